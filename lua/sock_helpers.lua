-- One-call helpers and option tables:
--   sock.tcp{family=, protocol=, <socket options>}  (sock.udp likewise)
--   sock.listen_tcp(host, port, [opts])   sock.connect_tcp(host, port, [opts])
--   sock.listen_udp(host, port, [opts])   sock.connect_udp(host, port, [opts])
--   sock.listen_unix(path, [opts])        sock.connect_unix(path, [opts])
-- Every helper returns the socket, or nil, err (the socket it made is closed
-- again). Wrong argument types and unknown option names raise, at the
-- caller's line.
local sock = ...

local type, pairs, ipairs, tostring, pcall = type, pairs, ipairs, tostring, pcall
local sort, format = table.sort, string.format

local c_tcp, c_udp = sock.tcp, sock.udp

-- Keys of an options table that are not socket options, and the types of
-- their values. A value of another type raises rather than being taken for
-- true (ipv6 = 'no') or passed on.
local NOT_OPTIONS = {
	family = 'string', protocol = 'string or number', ipv6 = 'boolean', backlog = 'number',
	expires = 'number', unlink = 'boolean', datagram = 'boolean', local_path = 'string',
}

-- Names the helpers take that setopt spells differently.
local ALIASES = {device = 'so_bindtodevice', bindtodevice = 'so_bindtodevice'}

local raise_at_caller = sock._raise_at_caller
local function argerror(n, fname, msg)
	raise_at_caller(format("bad argument #%d to '%s' (%s)", n, fname, msg))
end

local function type_allowed(expected, t)
	for allowed in expected:gmatch('%S+') do  -- 'string or number'
		if allowed == t then return true end
	end
	return false
end

local function check_opts(opts, n, fname)
	if opts == nil then return {} end
	if type(opts) ~= 'table' then
		argerror(n, fname, 'options table expected, got ' .. type(opts))
	end
	for k, expected in pairs(NOT_OPTIONS) do
		local v = opts[k]
		if v ~= nil and not type_allowed(expected, type(v)) then
			argerror(n, fname, format('%s: %s expected, got %s', k, expected, type(v)))
		end
	end
	return opts
end

-- Apply the socket options of `opts` to `s` (in name order, so the outcome
-- does not depend on table order). Raises for an unknown option or a value
-- of the wrong type; returns nil, err when the OS refuses one.
local function apply_options(s, opts, n, fname)
	local keys = {}
	for k in pairs(opts) do
		if type(k) ~= 'string' then
			s:close()
			argerror(n, fname, 'option names must be strings, got ' .. type(k))
		end
		if not NOT_OPTIONS[k] then keys[#keys + 1] = k end
	end
	sort(keys)
	for _, k in ipairs(keys) do
		local ok, set, err = pcall(s.setopt, s, ALIASES[k] or k, opts[k])
		if not ok then  -- setopt raised: unknown name, read-only option, bad value
			s:close()
			local why = tostring(set):match("%((.*)%)$") or tostring(set)
			argerror(n, fname, format("option '%s': %s", k, why))
		end
		if not set then
			s:close()
			return nil, err
		end
	end
	return s
end

-- Make a socket with c_create for `family` and apply `opts` (checked by
-- check_opts), plus the defaults (used when opts leaves an option out).
local function make(c_create, family, opts, defaults, n, fname)
	-- c_create raises for an unknown family or protocol naming its own
	-- arguments; name the helper's instead.
	local ok, s, err = pcall(c_create, family, opts.protocol)
	if not ok then
		argerror(n, fname, tostring(s):match("%((.*)%)$") or tostring(s))
	end
	if not s then return nil, err end
	if defaults then
		for k, v in pairs(defaults) do
			if opts[k] == nil then
				local ok, serr = s:setopt(k, v)
				if not ok then
					s:close()
					return nil, serr
				end
			end
		end
	end
	return apply_options(s, opts, n, fname)
end

-- sock.tcp([family][, protocol]) as before, or sock.tcp(opts).
local function with_options(c_create, fname)
	return function(a, b)
		if type(a) ~= 'table' then
			if a ~= nil and type(a) ~= 'string' then
				argerror(1, fname, 'family name or options table expected, got ' .. type(a))
			end
			local s, err = c_create(a, b)
			return s, err
		end
		if b ~= nil then  -- the protocol goes in the table
			argerror(2, fname, 'nothing expected after the options table, got ' .. type(b))
		end
		check_opts(a, 1, fname)
		local family = a.family
		if family == nil and a.ipv6 then family = 'inet6' end
		local s, err = make(c_create, family, a, nil, 1, fname)
		return s, err
	end
end

sock.tcp = with_options(c_tcp, 'tcp')
sock.udp = with_options(c_udp, 'udp')

-- Helpers over inet/inet6 ----------------------------------------------------

local LISTEN_DEFAULTS = {reuseaddr = true}

local function check_port(port, fname)
	local t = type(port)
	if t ~= 'nil' and t ~= 'number' and t ~= 'string' then
		argerror(2, fname, 'port number or service name expected, got ' .. t)
	end
end

-- The family a host implies: from the options, from an IP literal, from an
-- ai/sa object; nil for a host name, which needs a lookup.
local function host_family(host, opts, fname)
	if opts.family ~= nil then return opts.family end
	if opts.ipv6 then return 'inet6' end
	local t = type(host)
	if t == 'nil' then return 'inet' end
	if t == 'string' then
		if host == '*' or sock.is_ipv4(host) then return 'inet' end
		if sock.is_ipv6(host:match('^[^%%]*')) then return 'inet6' end
		return nil
	end
	if t == 'userdata' then  -- an ai or sa from sock.addr, recvnext, getsockname...
		local ok, fam = pcall(function() return host:family() end)
		if ok and type(fam) == 'string' then return fam end
	end
	argerror(1, fname, 'host string expected, got ' .. t)
end

-- The addresses to try for a host: {{family, host_or_ai}, ...} | nil, err
local function targets(host, port, socktype, opts, flags, fname)
	local family = host_family(host, opts, fname)
	if family then return {{family, host}} end
	local ai, err = sock.addr(host, port, socktype, nil, nil, flags)
	if not ai then return nil, err end
	local list = {}
	for a in ai:addrs() do list[#list + 1] = {a:family(), a} end
	return list
end

local function listen_stream(s, backlog, host, port)
	if backlog ~= nil then return s:listen(backlog, host, port) end
	return s:listen(host, port)
end

-- sock.listen_tcp([host], port, [opts]) -> listening socket | nil, err
function sock.listen_tcp(host, port, opts)
	opts = check_opts(opts, 3, 'listen_tcp')
	check_port(port, 'listen_tcp')
	local list, err = targets(host, port, 'tcp', opts, 'passive', 'listen_tcp')
	if not list then return nil, err end
	local family, target = list[1][1], list[1][2]
	local s, serr = make(c_tcp, family, opts, LISTEN_DEFAULTS, 3, 'listen_tcp')
	if not s then return nil, serr end
	local ok, lerr = listen_stream(s, opts.backlog, target, port)
	if not ok then
		s:close()
		return nil, lerr
	end
	return s
end

-- Try each address in turn; the first that connects wins.
local function connect_any(c_create, socktype, host, port, opts, fname)
	local list, err = targets(host, port, socktype, opts, nil, fname)
	if not list then return nil, err end
	for _, t in ipairs(list) do
		local s, serr = make(c_create, t[1], opts, nil, 3, fname)
		if s then
			local ok, cerr = s:connect(t[2], port, opts.expires)
			if ok then return s end
			s:close()
			serr = cerr
		end
		err = serr
		if err == 'timeout' then break end  -- the deadline is spent for all of them
	end
	return nil, err
end

-- sock.connect_tcp(host, port, [opts]) -> connected socket | nil, err
function sock.connect_tcp(host, port, opts)
	opts = check_opts(opts, 3, 'connect_tcp')
	check_port(port, 'connect_tcp')
	return connect_any(c_tcp, 'tcp', host, port, opts, 'connect_tcp')
end

-- sock.listen_udp([host], port, [opts]) -> bound socket | nil, err
function sock.listen_udp(host, port, opts)
	opts = check_opts(opts, 3, 'listen_udp')
	check_port(port, 'listen_udp')
	local list, err = targets(host, port, 'udp', opts, 'passive', 'listen_udp')
	if not list then return nil, err end
	local s, serr = make(c_udp, list[1][1], opts, LISTEN_DEFAULTS, 3, 'listen_udp')
	if not s then return nil, serr end
	local ok, berr = s:bind(list[1][2], port)
	if not ok then
		s:close()
		return nil, berr
	end
	return s
end

-- sock.connect_udp(host, port, [opts]) -> connected socket | nil, err
function sock.connect_udp(host, port, opts)
	opts = check_opts(opts, 3, 'connect_udp')
	check_port(port, 'connect_udp')
	return connect_any(c_udp, 'udp', host, port, opts, 'connect_udp')
end

-- Unix domain sockets ----------------------------------------------------------

-- (path, opts) or (path, nil, opts), like the inet helpers' (host, port, opts).
local function unix_args(path, a, b, fname)
	if type(path) ~= 'string' then argerror(1, fname, 'path string expected, got ' .. type(path)) end
	if type(a) == 'table' then
		if b ~= nil then argerror(3, fname, 'nothing expected after the options table, got ' .. type(b)) end
		return check_opts(a, 2, fname), 2
	end
	if a ~= nil then argerror(2, fname, 'options table expected, got ' .. type(a)) end
	return check_opts(b, 3, fname), 3
end

local function is_abstract(path)
	local c = path:sub(1, 1)
	return c == '@' or c == '\0'
end

-- sock.listen_unix(path, [opts]) -> listening socket (bound socket with
-- opts.datagram) | nil, err. opts.unlink removes a file left at path first.
function sock.listen_unix(path, a, b)
	local opts, n = unix_args(path, a, b, 'listen_unix')
	local s, err = make(opts.datagram and c_udp or c_tcp, 'unix', opts, nil, n, 'listen_unix')
	if not s then return nil, err end
	if opts.unlink and path ~= '' and not is_abstract(path) then os.remove(path) end
	local ok, lerr
	if opts.datagram then
		ok, lerr = s:bind(path)
	else
		ok, lerr = listen_stream(s, opts.backlog, path)
	end
	if not ok then
		s:close()
		return nil, lerr
	end
	return s
end

-- sock.connect_unix(path, [opts]) -> connected socket | nil, err.
-- opts.local_path binds the socket first (a datagram socket needs a name to
-- get replies); opts.expires bounds the wait.
function sock.connect_unix(path, a, b)
	local opts, n = unix_args(path, a, b, 'connect_unix')
	local lp = opts.local_path
	local s, err = make(opts.datagram and c_udp or c_tcp, 'unix', opts, nil, n, 'connect_unix')
	if not s then return nil, err end
	local ok, cerr = true, nil
	if lp then ok, cerr = s:bind(lp) end
	if ok then ok, cerr = s:connect(path, nil, opts.expires) end
	if not ok then
		s:close()
		return nil, cerr
	end
	return s
end
