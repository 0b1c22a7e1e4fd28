-- Name lookups that do not block the loop (see src/lua/lua_dns.hpp).
--
-- Inside a sock thread, sock.addr and the socket methods that take a host
-- (connect, bind, listen, sendto) do not resolve a host name themselves:
-- after checking every argument they return the lookup marker and a request
-- object. The wrappers below wait for the lookup on the resolver's worker
-- threads (sock._lookup, which yields like any I/O call) and call the C
-- function again with the resolved ai in place of the host. IP literals,
-- '*', unix paths and every call outside a thread never see the marker:
-- for them a wrapper costs one comparison.
local sock = ...

local methods = sock._socket_methods
local LOOKUP = sock._lookup_marker
local lookup = sock._lookup

local c_addr = sock.addr
function sock.addr(...)
	local ai, err = c_addr(...)
	if ai == LOOKUP then return lookup(err) end
	return ai, err
end

-- s:connect(host, port, [expires], [flags]): the lookup shares the deadline.
local c_connect = methods.connect
function methods.connect(self, host, port, expires, ...)
	local ok, err, x = c_connect(self, host, port, expires, ...)
	if ok ~= LOOKUP then return ok, err, x end
	local ai, lerr = lookup(err, expires)
	if not ai then return nil, lerr end
	return c_connect(self, ai, port, expires, ...)
end

local c_bind = methods.bind
function methods.bind(self, host, ...)
	local ok, err = c_bind(self, host, ...)
	if ok ~= LOOKUP then return ok, err end
	local ai, lerr = lookup(err)
	if not ai then return nil, lerr end
	return c_bind(self, ai, ...)
end

-- s:listen([backlog, ]host, port, [flags])
local c_listen = methods.listen
function methods.listen(self, ...)
	local ok, err = c_listen(self, ...)
	if ok ~= LOOKUP then return ok, err end
	local ai, lerr = lookup(err)
	if not ai then return nil, lerr end
	if type((...)) == 'number' then  -- a backlog comes first
		local backlog, _, port = ...
		return c_listen(self, backlog, ai, port, select(4, ...))
	end
	return c_listen(self, ai, select(2, ...))
end

-- s:sendto(host, port, data, [len], [expires], [flags], [af])
local c_sendto = methods.sendto
function methods.sendto(self, host, port, data, len, expires, ...)
	local n, err = c_sendto(self, host, port, data, len, expires, ...)
	if n ~= LOOKUP then return n, err end
	local ai, lerr = lookup(err, expires)
	if not ai then return nil, lerr end
	return c_sendto(self, ai, port, data, len, expires, ...)
end
