-- TLS connections over tcp sockets:
--   sock.tls_client(tcp, servername, [opt]) -> conn
--   sock.tls_server(listening_tcp, [opt])  -> listener; listener:accept([expires]) -> conn
--   sock.connect_tls(host, port, [opt], [expires]) -> conn (handshake done)
--   sock.listen_tls(host, port, [opt])     -> listener
--   sock.tls_config(opt) -> config (options checked once, contexts made once)
-- and luapower's require'sock_libtls' (client_stcp, server_stcp, config).
--
-- The binding (lua_tls.cpp) runs each engine step to its end over the tcp
-- socket in C (s:io_read, s:io_write, ...), receiving and sending the
-- ciphertext with the socket's own wait records, `expires` and error names,
-- so TLS works on every backend as the socket does. This file keeps the
-- API: the handshake shared by threads, the buffered reads, close.
local sock = ...

local type, pairs, setmetatable, tostring = type, pairs, setmetatable, tostring
local format, min, huge = string.format, math.min, math.huge
local raise_at_caller = sock._raise_at_caller
local methods = sock._socket_methods
local ffi_methods = sock._tls_ffi_methods  -- (LuaJIT: lua/sock_ffi.lua's, else nil)
-- The caller's arguments checked as a tcp socket's method checks them, with
-- the same messages: the checked size back (lua_bufread.cpp).
local check_args = sock._check_stream_args

local NO_TLS = 'sock was built without TLS (OpenSSL 3 not found)'

-- Options: name -> the type its value must have.
local OPTIONS = {
	verify = 'boolean', verify_client = 'boolean', insecure_noverifycert = 'boolean',
	ca = 'string', ca_file = 'string', ca_dir = 'string', ca_path = 'string',
	cert = 'string', cert_file = 'string', key = 'string', key_file = 'string',
	alpn = 'table or string', min_version = 'string', max_version = 'string', protocols = 'string',
	ciphers = 'string', ciphersuites = 'string', servername = 'string', tcp = 'table',
	session_reuse = 'boolean',
}

local function argerror(n, fname, msg)
	raise_at_caller(format("bad argument #%d to '%s' (%s)", n, fname, msg))
end

-- 'TLSv1.2', 'tlsv1.2', '1.2' -> 'tls1.2' (the engine's spelling).
local function version_name(v)
	v = v:lower():gsub('^tlsv', 'tls')
	if v:find('^%d') then v = 'tls' .. v end
	return v
end

-- The options for the engine, from a user's table: types checked, luapower
-- (libtls) spellings mapped. `server` says which side.
local function engine_options(opt, server, n, fname)
	local o = {server = server}
	for k, v in pairs(opt) do
		local expected = OPTIONS[k]
		if not expected then argerror(n, fname, format("unknown option '%s'", tostring(k))) end
		local t = type(v)
		if not expected:find(t, 1, true) then
			argerror(n, fname, format("option '%s': %s expected, got %s", k, expected, t))
		end
	end
	o.ca, o.ca_file, o.ca_dir = opt.ca, opt.ca_file, opt.ca_dir or opt.ca_path
	o.cert, o.cert_file, o.key, o.key_file = opt.cert, opt.cert_file, opt.key, opt.key_file
	o.ciphers, o.ciphersuites = opt.ciphers, opt.ciphersuites
	o.min_version = opt.min_version and version_name(opt.min_version)
	o.max_version = opt.max_version and version_name(opt.max_version)
	if opt.protocols then  -- libtls: 'tlsv1.2,tlsv1.3'
		for p in opt.protocols:gmatch('[^%s,:]+') do
			local v = version_name(p)
			if not o.min_version or v < o.min_version then o.min_version = v end
			if not o.max_version or v > o.max_version then o.max_version = v end
		end
	end
	if server then  -- servers verify only clients asked to (mutual TLS)
		o.verify = opt.verify_client == true or opt.verify == true
	else
		o.verify = opt.verify ~= false and not opt.insecure_noverifycert
	end
	o.session_reuse = opt.session_reuse ~= false
	local alpn = opt.alpn
	if type(alpn) == 'string' then  -- 'h2,http/1.1'
		local list = {}
		for p in alpn:gmatch('[^,]+') do list[#list + 1] = p end
		alpn = list
	end
	if alpn then
		for i = 1, #alpn do
			if type(alpn[i]) ~= 'string' then argerror(n, fname, "option 'alpn': a list of strings expected") end
		end
	end
	o.alpn = alpn
	return o
end

-- Configs -------------------------------------------------------------------

local config_class = {}
local config_mt = {__index = config_class}

local function check_available(fname)
	if not sock._tls_available then raise_at_caller(fname .. ': ' .. NO_TLS) end
end

-- sock.tls_config(opt) -> config: options checked now; the OpenSSL context
-- of each side made on first use and shared by every connection made with it.
function sock.tls_config(opt)
	check_available('tls_config')
	if opt == nil then opt = {} end
	if type(opt) ~= 'table' then argerror(1, 'tls_config', 'options table expected, got ' .. type(opt)) end
	engine_options(opt, false, 1, 'tls_config')  -- raises on a bad option
	return setmetatable({opt = opt, contexts = {}}, config_mt)
end

-- The context of one side, made once; a bad file or PEM text raises.
local function context_of(config, server, n, fname)
	local side = server and 'server' or 'client'
	local ctx = config.contexts[side]
	if ctx then return ctx end
	local err
	ctx, err = sock._tls_context(engine_options(config.opt, server, n, fname))
	if not ctx then argerror(n, fname, err) end
	config.contexts[side] = ctx
	return ctx
end

-- A plain options table gets its config once (making a context loads the
-- CA store, far too slow for every connection).
local configs_of_tables = setmetatable({}, {__mode = 'k'})
local NO_OPTIONS = {}  -- (no options: one shared config too)
local function config_of(opt, n, fname)
	if opt == nil then opt = NO_OPTIONS end
	if getmetatable(opt) == config_mt then return opt end
	if type(opt) ~= 'table' then argerror(n, fname, 'options table or tls config expected, got ' .. type(opt)) end
	local config = configs_of_tables[opt]
	if not config then
		engine_options(opt, false, n, fname)
		config = setmetatable({opt = opt, contexts = {}}, config_mt)
		configs_of_tables[opt] = config
	end
	return config
end

-- Connections ---------------------------------------------------------------

-- The methods of TLS connections, which code may extend as it does
-- sock.tcp_class. The flags are luapower sock_libtls's.
local tls_class = {issocket = true, istcpsocket = true, istlssocket = true}
sock.tls_class = tls_class
local conn_mt = {__index = tls_class}

local WRITE_CHUNK = 262144    -- plaintext encrypted per step, so a huge send is not all held at once
local DEFAULT_MAXLINE = 65536

local function wrap(tcp, session)
	local c = setmetatable({tcp = tcp, _s = session}, conn_mt)
	-- An accepted socket's addresses, as on a tcp socket.
	for _, k in pairs{'remote_addr', 'remote_port', 'local_addr', 'local_port'} do
		local v = tcp[k]
		if v ~= nil then c[k] = v end
	end
	return c
end

-- Run one engine step ('io_read', 'io_write', ...: a session method) to
-- its end, the ciphertext moved over the socket as it asks. Returns the
-- step's count | false, 'eof' (close_notify came) | false,
-- 'eof_without_close_notify' | nil, err.
local function run(self, expires, op, a, b, c)
	local s = self._s
	if not s then return nil, 'closed' end
	return s[op](s, expires, a, b, c)
end

-- conn:handshake([expires]) -> true | nil, err. Done once; the first I/O
-- call does it when the program did not. A second thread asking while the
-- first is at it waits for that outcome.
local class_recv, class_send  -- (the class's own recv and send, defined below)
local function handshake(self, expires)
	if self._handshaken then return true end
	if not self._s then return nil, 'closed' end
	while self._hs_waiters do
		local job = sock.sleep_job()
		local waiters = self._hs_waiters
		waiters[#waiters + 1] = job
		local ok, err = job:sleep_until(expires or huge)
		if ok then return true end
		if err == nil then  -- our own deadline
			for i = #waiters, 1, -1 do
				if waiters[i] == job then table.remove(waiters, i) end
			end
			return nil, 'timeout'
		end
		if err ~= 'timeout' then return nil, err end
		-- its deadline passed, maybe not ours: try ourselves
		if self._handshaken then return true end
	end
	self._hs_waiters = {}
	local r, err = run(self, expires, 'io_handshake')
	if r then
		self._handshaken = true
		-- From now on recv and send go straight to the binding: the
		-- connection's own fields, unless code replaced the class's.
		local s = self._s
		if s and tls_class.recv == class_recv and tls_class.send == class_send then
			local recv, send = s:fast_methods()
			if ffi_methods then recv, send = ffi_methods(s, recv, send) end
			self.recv, self.send = recv, send
		end
	elseif r == false then
		err = 'eof'  -- the peer closed during the handshake
	end
	local waiters = self._hs_waiters
	self._hs_waiters = nil
	for i = 1, #waiters do
		if r then waiters[i]:wakeup(true) else waiters[i]:wakeup(nil, err) end
	end
	if r then return true end
	return nil, err
end
tls_class.handshake = handshake

-- conn:recv(buf, len, [expires]) -> n | 0 at the end | nil, err
-- At an end without close_notify it returns 0, 'eof_without_close_notify'.
function tls_class:recv(buf, len, expires)
	local s = self._s
	if s and self._handshaken then return s:io_recv(buf, len, expires) end
	check_args('recv', self, buf, len, expires)
	if not self._handshaken then
		local ok, err = handshake(self, expires)
		if not ok then return nil, err end
		s = self._s
	end
	if not s then return nil, 'closed' end
	return s:io_recv(buf, len, expires)
end
class_recv = tls_class.recv

-- conn:_send(buf, len, [expires]) -> n | nil, err: one step (luapower's
-- single-shot send, which tcp_class.send loops over).
function tls_class:_send(buf, len, expires)
	len = check_args('_send', self, buf, len, expires)
	if not self._handshaken then
		local ok, err = handshake(self, expires)
		if not ok then return nil, err end
	end
	local n, serr = run(self, expires, 'io_write', buf, 0, min(len, WRITE_CHUNK))
	if n then return n end
	return nil, serr == 'eof' and 'closed' or serr
end

-- conn:send(s|buf, [len], [expires]) -> true | nil, err, sent
function tls_class:send(buf, len, expires)
	local s = self._s
	if s and self._handshaken then return s:io_send(buf, len, expires) end
	check_args('send', self, buf, len, expires)
	if not self._handshaken then
		local ok, err = handshake(self, expires)
		if not ok then return nil, err, 0 end
		s = self._s
	end
	if not s then return nil, 'closed', 0 end
	return s:io_send(buf, len, expires)
end
class_send = tls_class.send

-- conn:recvn(buf, len, [expires]) -> buf, len | nil, err, read_len
function tls_class:recvn(buf, len, expires)
	len = check_args('recvn', self, buf, len, expires)
	local ok, err = handshake(self, expires)
	if not ok then return nil, err, 0 end
	local got = 0
	while got < len do
		local n, rerr = run(self, expires, 'io_read', buf, len - got, got)
		if not n then return nil, n == false and 'eof' or rerr, got end
		got = got + n
	end
	return buf, len
end

-- Read ahead once: n | false, eof kind | nil, err.
local function read_ahead(self, expires)
	return run(self, expires, 'io_read_ahead')
end

-- What is read ahead, all of it: the partial result at the end of the
-- stream ('' when the connection was closed meanwhile).
local function leftover(self, s)
	if not s or self._s ~= s then return '' end
	return s:consume(s:buffered())
end

-- conn:recvall([expires]) -> buf, len | nil, err, buf, len. A stream that
-- ends without close_notify may have been cut short: that is an error here
-- ('eof_without_close_notify'), with what came as the partial result.
function tls_class:recvall(expires)
	local ok, err = handshake(self, expires)
	if not ok then return nil, err, sock._buffer_of(''), 0 end
	local s = self._s
	while true do
		local n, rerr = read_ahead(self, expires)
		if not n then
			local data = leftover(self, s)
			if n == false and rerr == 'eof' then return sock._buffer_of(data), #data end
			return nil, rerr, sock._buffer_of(data), #data
		end
	end
end

tls_class.recvall_read = methods.recvall_read  -- (works over self:recvall)

-- Buffered reads, with the results and errors of a tcp socket's.

local function check_open(self, expires)
	local ok, err = handshake(self, expires)
	if not ok then return nil, err end
	if not self._s then return nil, 'closed' end
	return self._s
end

-- Read ahead once more: true | nil, 'eof', the rest read ahead | nil, err.
local function read_more(self, s, expires)
	local r, err = read_ahead(self, expires)
	if r then return true end
	if r == false then return nil, 'eof', leftover(self, s) end
	return nil, err
end

-- conn:read([max], [expires]) -> s | nil, err
function tls_class:read(max, expires)
	max = check_args('read', self, max, expires)
	local s, err = check_open(self, expires)
	if not s then return nil, err end
	if s:buffered() == 0 then
		local n, rerr = read_ahead(self, expires)
		if not n then return nil, n == false and 'eof' or rerr end
	end
	return s:consume(min(max, s:buffered()))
end

-- conn:readn(n, [expires]) -> s | nil, err, partial
function tls_class:readn(n, expires)
	n = check_args('readn', self, n, expires)
	local s, err = check_open(self, expires)
	if not s then return nil, err end
	while s:buffered() < n do
		local ok, rerr, partial = read_more(self, s, expires)
		if not ok then return nil, rerr, partial end
	end
	return s:consume(n)
end

-- conn:readuntil(delim, [max], [expires]) -> s | nil, err, partial
function tls_class:readuntil(delim, max, expires)
	max = check_args('readuntil', self, delim, max, expires) or self._maxline or DEFAULT_MAXLINE
	local s, err = check_open(self, expires)
	if not s then return nil, err end
	while true do
		local at = s:find(delim)
		if at and at <= max then return s:consume(at, #delim) end
		if at or s:buffered() >= max + #delim then return nil, 'too_long' end
		local ok, rerr, partial = read_more(self, s, expires)
		if not ok then return nil, rerr, partial end
	end
end

-- conn:readline([expires]) -> line | nil, err, partial
function tls_class:readline(expires)
	check_args('readline', self, expires)
	local line, err, partial = self:readuntil('\n', (self._maxline or DEFAULT_MAXLINE) + 1, expires)
	if not line then return nil, err, partial end
	if line:sub(-1) == '\r' then return line:sub(1, -2) end
	return line
end

function tls_class:setmaxline(n)
	n = check_args('setmaxline', self, n)
	local prev = self._maxline or DEFAULT_MAXLINE
	self._maxline = n
	return prev
end

function tls_class:buffered()
	return self._s and self._s:buffered() or 0
end

-- Send close_notify, trying once when no deadline is given (it fits in the
-- socket's buffer unless the peer stopped reading).
local function send_close_notify(self, s, expires)
	if self._shut or not s:handshake_done() then return true end
	self._shut = true
	local ok, err = s:io_shutdown(expires or sock.clock())
	if not ok then return nil, err end
	return true
end

-- conn:shutdown([mode], [expires]): 'w' and 'both' (the default, as for
-- tcp) send close_notify first.
function tls_class:shutdown(mode, expires)
	local s = self._s
	if not s then return nil, 'closed' end
	if mode ~= 'r' then
		local ok, err = send_close_notify(self, s, expires)
		if not ok then return nil, err end
	end
	return self.tcp:shutdown(mode)
end

-- conn:close([expires]) -> true: close_notify (best effort), then the socket.
function tls_class:close(expires)
	local s = self._s
	if not s then return true end
	if not s:flushing() then send_close_notify(self, s, expires) end
	self._s = nil
	s:free()
	self.tcp:close()
	return true
end

function tls_class:closed() return self._s == nil end

function tls_class:peer_certificate()
	return self._s and self._s:peer_certificate()
end
function tls_class:alpn()
	return self._s and self._s:alpn()
end
function tls_class:session_reused()
	return self._s and self._handshaken and self._s:session_reused() or false
end
function tls_class:version()
	return self._s and self._handshaken and self._s:version() or nil
end
function tls_class:type() return 'tcp' end
function tls_class:getsockname() return self.tcp:getsockname() end
function tls_class:getpeername() return self.tcp:getpeername() end
function tls_class:setopt(...) return self.tcp:setopt(...) end
function tls_class:getopt(...) return self.tcp:getopt(...) end

-- Constructors ----------------------------------------------------------------

local function check_tcp(n, fname, tcp)
	if type(tcp) ~= 'table' then
		argerror(n, fname, 'tcp socket expected, got ' .. type(tcp))
	end
end

-- sock.tls_client(tcp, servername, [opt]) -> conn | nil, err. No I/O: the
-- handshake happens on first use or in conn:handshake([expires]).
function sock.tls_client(tcp, servername, opt)
	check_available('tls_client')
	check_tcp(1, 'tls_client', tcp)
	if servername ~= nil and type(servername) ~= 'string' then
		argerror(2, 'tls_client', 'string expected, got ' .. type(servername))
	end
	local config = config_of(opt, 3, 'tls_client')
	local s, err = sock._tls_session(context_of(config, false, 3, 'tls_client'), servername or config.opt.servername)
	if not s then return nil, err end
	if not s:attach(tcp) then
		s:free()
		argerror(1, 'tls_client', 'tcp socket expected, got a table that is none')
	end
	return wrap(tcp, s)
end

local listener_class = {issocket = true, istcpsocket = true, istlssocket = true}
sock.tls_listener_class = listener_class
local listener_mt = {__index = listener_class}

-- sock.tls_server(listening_tcp, [opt]) -> listener
function sock.tls_server(tcp, opt)
	check_available('tls_server')
	check_tcp(1, 'tls_server', tcp)
	local config = config_of(opt, 2, 'tls_server')
	local ctx = context_of(config, true, 2, 'tls_server')  -- checks the certificate now
	return setmetatable({tcp = tcp, _ctx = ctx}, listener_mt)
end

-- listener:accept([expires]) -> conn | nil, err. The handshake happens on
-- the connection's first use (or conn:handshake), so one slow client does
-- not hold up the accepting thread.
function listener_class:accept(expires)
	local c, err = self.tcp:accept(expires)
	if not c then return nil, err end
	local s, serr = sock._tls_session(self._ctx)
	if not s then
		c:close()
		return nil, serr
	end
	s:attach(c)
	return wrap(c, s)
end
function listener_class:close() return self.tcp:close() end
function listener_class:closed() return self.tcp:closed() end
function listener_class:getsockname() return self.tcp:getsockname() end
function listener_class:type() return 'tcp' end

-- One-call helpers ------------------------------------------------------------

-- sock.connect_tls(host, port, [opt], [expires]) -> conn | nil, err: connected
-- and handshaken; opt.tcp are connect_tcp's options, opt.servername
-- overrides the host as the name to send and verify.
function sock.connect_tls(host, port, opt, expires)
	check_available('connect_tls')
	local config = config_of(opt, 3, 'connect_tls')
	context_of(config, false, 3, 'connect_tls')  -- bad options raise before any I/O
	local tcp_opts = {}
	for k, v in pairs(config.opt.tcp or {}) do tcp_opts[k] = v end
	tcp_opts.expires = expires
	local tcp, err = sock.connect_tcp(host, port, tcp_opts)
	if not tcp then return nil, err end
	local servername = config.opt.servername or (type(host) == 'string' and host or nil)
	local c, cerr = sock.tls_client(tcp, servername, config)
	if not c then
		tcp:close()
		return nil, cerr
	end
	local ok, herr = c:handshake(expires)
	if not ok then
		c:close(sock.clock())
		return nil, herr
	end
	return c
end

-- sock.listen_tls([host], port, [opt]) -> listener | nil, err; opt.tcp are
-- listen_tcp's options.
function sock.listen_tls(host, port, opt)
	check_available('listen_tls')
	local config = config_of(opt, 3, 'listen_tls')
	context_of(config, true, 3, 'listen_tls')
	local tcp, err = sock.listen_tcp(host, port, config.opt.tcp)
	if not tcp then return nil, err end
	return sock.tls_server(tcp, config)
end

-- luapower's module, for code written for sock_libtls: require'sock_libtls'.
if package and package.preload and package.preload.sock_libtls == nil and not package.loaded.sock_libtls then
	package.preload.sock_libtls = function()
		return {
			client_stcp = function(tcp, servername, opt) return sock.tls_client(tcp, servername, opt) end,
			server_stcp = function(tcp, opt) return sock.tls_server(tcp, opt) end,
			config = function(opt) return sock.tls_config(opt) end,
		}
	end
end

return sock
