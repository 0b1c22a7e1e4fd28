-- The LuaJIT fast path: recv, send and the sock.buffer accessors through
-- the FFI, which the JIT compiles, instead of the Lua C API, which it
-- cannot (every call through it leaves the trace).
--
-- The module hands over a table of C function pointers (sock._fast_api(),
-- a light userdata): no symbol is looked up by name, since ffi.C cannot see
-- a module DLL's symbols on Windows. Each fast function here checks in Lua
-- that every argument is one the C API function would take without a word;
-- anything else (a wrong type, a length out of range, a call from outside
-- any sock thread) goes to the C API function itself, which raises or
-- answers as it always does. So the
-- semantics have one source: the C code after the argument checks is shared
-- (recv_prepare, send_prepare, try_before_wait in lua_socket.cpp), and a
-- call that has to wait yields through the C API (fast_wait), since only it
-- can yield.
--
-- TLS connections' recv and send (once handshaken) go the same way: see
-- sock._tls_ffi_methods below.
--
-- Without LuaJIT, without its FFI, or with SOCK_FFI=0 in the environment,
-- nothing here runs: every call takes the C API path.
local sock = ...

if type(jit) ~= 'table' or type(sock._fast_api) ~= 'function' or os.getenv('SOCK_FFI') == '0' then
	return sock
end
local ok, ffi = pcall(require, 'ffi')
if not ok then return sock end

local api_ud, fast_wait, tcp_mt, udp_mt, raw_mt, socket_mt, tls_finish = sock._fast_api()
sock._fast_api = nil  -- (fast_wait and tls_finish are for this file only)

-- Anonymous types: nothing is added to the program's ffi.C namespace.
local api_t = ffi.typeof[[struct {
	unsigned version, size, buffer_size_offset, buffer_data_offset;
	double wait, slow;
	double (*recv)(void *socket, void *buf, size_t len, double expires, int flags);
	double (*send)(void *socket, const void *buf, size_t len, double expires, int flags, double *out);
	const char *(*error_message)(int code);
	double (*tls_recv)(void *session, void *buf, size_t len, double expires);
	double (*tls_send)(void *session, const void *buf, size_t len, double expires);
}]]
local api = ffi.cast(ffi.typeof('const $ *', api_t), api_ud)
if api.version ~= 2 or api.size ~= ffi.sizeof(api_t) then return sock end

local c_recv_fast, c_send_fast, c_error_message = api.recv, api.send, api.error_message
local WAIT, SLOW = api.wait, api.slow
local SIZE_OFF, DATA_OFF = api.buffer_size_offset, api.buffer_data_offset
local cast, typeof, ffi_string = ffi.cast, ffi.typeof, ffi.string
local charp, sizep, voidp = ffi.typeof('char *'), ffi.typeof('size_t *'), ffi.typeof('void *')
local type, rawget, getmetatable, tonumber, pcall = type, rawget, getmetatable, tonumber, pcall
local NONE = 0 / 0           -- no deadline (the checks refuse a caller's NaN)
local MAX = 2 ^ 52           -- lengths and indices beyond: the C API path says what it thinks
local FLAGS_MAX = 2 ^ 31
local out = ffi.new('double[2]')  -- send's extra results (no fast call yields, so one will do)

local buffer_mt = getmetatable(sock.buffer(0))
local methods = sock._socket_methods
local tcp_class, udp_class, raw_class = sock.tcp_class, sock.udp_class, sock.raw_class
local c_recv = tcp_class.recv
local twins = sock._twins
local c_send = twins[methods.send]

-- cdata buffers: the C API path casts them to void* (lua_buffer.cpp, with
-- the converter sock.lua registers), which raises for a few kinds; those go
-- to it. Remembered per ctype (a bounded number of them).
local castable, ncastable = {}, 0
local function cdata_ok(buf)
	local id = tonumber(typeof(buf))
	local ok = castable[id]
	if ok == nil then
		ok = pcall(cast, voidp, buf)
		if ncastable < 1000 then
			castable[id] = ok
			ncastable = ncastable + 1
		end
	end
	return ok
end

local messages = {}
local function message(code)
	local m = messages[code]
	if m == nil then
		m = ffi_string(c_error_message(code))
		messages[code] = m
	end
	return m
end

-- The bytes of a recv's buffer or a send's data (strings too when
-- `strings`), as the C API path reads them: a pointer, and the size when it
-- is known (not for a cdata); false or nil for anything that path is to
-- take (a NULL cdata pointer, which it refuses, included).
local function bytes(buf, strings)
	if strings and type(buf) == 'string' then return buf, #buf end
	if getmetatable(buf) == buffer_mt then
		local base = cast(charp, buf)
		return base + DATA_OFF, tonumber(cast(sizep, base + SIZE_OFF)[0])
	end
	if type(buf) == 'cdata' and cdata_ok(buf) then
		local p = cast(voidp, buf)
		return p ~= nil and p
	end
end

local function ok_expires(expires)
	return expires == nil or (type(expires) == 'number' and expires == expires)
end
local function ok_flags(flags)
	return flags == nil or (type(flags) == 'number' and flags >= 0 and flags < FLAGS_MAX and flags % 1 == 0)
end

-- tcp|udp:recv(buf, [maxlen], [expires], [flags]) -> len | nil, err
-- (The arguments are passed on as they came: a missing one and a nil are
-- told apart in the C API path's messages.)
local function fast_recv(...)
	local self, buf, len, expires, flags = ...
	local ud = type(self) == 'table' and rawget(self, 0)
	if getmetatable(ud) == socket_mt then
		local p, cap = bytes(buf, false)
		local n = len
		if n == nil then n = cap end
		if p and type(n) == 'number' and n >= 1 and n <= (cap or MAX) and n % 1 == 0
				and ok_expires(expires) and ok_flags(flags) then
			local r = c_recv_fast(ud, p, n, expires or NONE, flags or 0)
			if r >= 0 then return r end
			if r == WAIT then return fast_wait(ud, false, buf) end
			if r ~= SLOW then return nil, message(-r) end
		end
	end
	return c_recv(...)
end

-- tcp:send(s|buf, [len], [expires], [flags]) -> true | nil, err, sent
-- udp:send(s|buf, [len], [expires], [flags]) -> len | nil, err
local function fast_send(...)
	local self, buf, len, expires, flags = ...
	local ud = type(self) == 'table' and rawget(self, 0)
	if getmetatable(ud) == socket_mt then
		local p, cap = bytes(buf, true)
		local n = len
		if n == nil then n = cap end
		if p and type(n) == 'number' and n >= 0 and n <= (cap or MAX) and n % 1 == 0
				and ok_expires(expires) and ok_flags(flags) then
			local r = c_send_fast(ud, p, n, expires or NONE, flags or 0, out)
			if r >= 0 then
				if out[0] == 1 then return true end
				return r
			end
			if r == WAIT then return fast_wait(ud, true, buf) end
			if r ~= SLOW then
				local sent = out[1]
				if sent >= 0 then return nil, message(-r), sent end
				return nil, message(-r)
			end
		end
	end
	return c_send(...)
end

-- TLS connections: once its handshake is done, lua/sock_tls.lua gives a
-- connection the recv and send of sock._tls_ffi_methods(session, c_recv,
-- c_send) in place of the session's C closures (s:fast_methods(), which it
-- passes here). Like them they ignore self: the session is bound. The
-- arguments are checked as above (a zero length goes to the C closure,
-- as anything else these do not take: it raises or answers); what the fast function cannot give as a number (an end without
-- close_notify, an error, a send's count) or must wait for, tls_finish
-- pushes or waits for: the same C code makes the results either way
-- (lua_tls.cpp: run_job, push_job).
local tls_on = true
local c_tls_recv, c_tls_send = api.tls_recv, api.tls_send
if tls_finish and c_tls_recv ~= nil then
	-- conn:recv(buf, [len], [expires]) -> n | 0 at the end | 0, 'eof_without_close_notify' | nil, err
	-- conn:send(s|buf, [len], [expires]) -> true | nil, err, sent
	function sock._tls_ffi_methods(s, c_recv, c_send)
		local function recv(...)
			if tls_on then
				local _, buf, len, expires = ...
				local p, cap = bytes(buf, false)
				local n = len
				if n == nil then n = cap end
				if p and type(n) == 'number' and n >= 1 and n <= (cap or MAX) and n % 1 == 0
						and ok_expires(expires) then
					local r = c_tls_recv(s, p, n, expires or NONE)
					if r >= 0 then return r end
					if r == WAIT then return tls_finish(s, buf) end
				end
			end
			return c_recv(...)
		end
		local function send(...)
			if tls_on then
				local _, buf, len, expires = ...
				local p, cap = bytes(buf, true)
				local n = len
				if n == nil then n = cap end
				if p and type(n) == 'number' and n >= 1 and n <= (cap or MAX) and n % 1 == 0
						and ok_expires(expires) then
					local r = c_tls_send(s, p, n, expires or NONE)
					if r >= 0 then return true end
					if r == WAIT then return tls_finish(s, buf) end
				end
			end
			return c_send(...)
		end
		return recv, send
	end
end

-- Sockets find these in place of the class's methods (the classes keep
-- theirs, which code extending them copies). sock.lua's twins stay.
local fast_twins = {}
for method, twin in pairs(twins) do fast_twins[method] = twin end
fast_twins[methods.send] = fast_send
for _, class in ipairs{tcp_class, udp_class, raw_class} do
	fast_twins[class.recv] = fast_recv
end
local active = fast_twins

-- The objects' __index, in Lua so that the JIT compiles the method lookup:
-- what the object does not hold comes from its class, looked up each time
-- (a method added to the class reaches every socket), the twin in its place;
-- what the class does not have either goes to the C __index, which fills
-- in an accepted socket's address fields on first access.
for mt, class in pairs{[tcp_mt] = tcp_class, [udp_mt] = udp_class, [raw_mt] = raw_class} do
	local c_index = mt.__index
	mt.__index = function(self, k)
		local v = class[k]
		if v ~= nil then
			local twin = active[v]
			if twin ~= nil then return twin end
			return v
		end
		return c_index(self, k)
	end
end

-- sock.buffer's accessors: #buf, buf:size(), buf:tostring([i[, j]]).
local buffer_methods = buffer_mt.__index
local c_len, c_size, c_tostring = buffer_mt.__len, buffer_methods.size, buffer_methods.tostring

local function buffer_size(b)
	return tonumber(cast(sizep, cast(charp, b) + SIZE_OFF)[0])
end
local function ok_index(i)
	return i == nil or (type(i) == 'number' and i > -MAX and i < MAX and i % 1 == 0)
end

local fast_buffer = {
	__len = function(...)
		local b = ...
		if getmetatable(b) == buffer_mt then return buffer_size(b) end
		return c_len(...)
	end,
	size = function(...)
		local b = ...
		if getmetatable(b) == buffer_mt then return buffer_size(b) end
		return c_size(...)
	end,
	-- string.sub's indices, as the C one reads them (lua_buffer.cpp's slice)
	tostring = function(...)
		local b, i, j = ...
		if getmetatable(b) == buffer_mt and ok_index(i) and ok_index(j) then
			local base = cast(charp, b)
			local n = tonumber(cast(sizep, base + SIZE_OFF)[0])
			i, j = i or 1, j or -1
			if i < 0 then i = n + i + 1 end
			if j < 0 then j = n + j + 1 end
			if i < 1 then i = 1 end
			if j > n then j = n end
			if i > j then return '' end
			return ffi_string(base + DATA_OFF + (i - 1), j - i + 1)
		end
		return c_tostring(...)
	end,
}
local c_buffer = {__len = c_len, size = c_size, tostring = c_tostring}

local function set_buffer_accessors(t)
	buffer_mt.__len = t.__len
	buffer_methods.size = t.size
	buffer_methods.tostring = t.tostring
end
set_buffer_accessors(fast_buffer)

-- sock._fast_path([on]) -> whether the fast path is in use. For the tests,
-- which run the same calls both ways; on is true or false to switch.
function sock._fast_path(on)
	if on ~= nil then
		active = on and fast_twins or twins
		tls_on = on and true or false
		set_buffer_accessors(on and fast_buffer or c_buffer)
	end
	return active == fast_twins
end

return sock
