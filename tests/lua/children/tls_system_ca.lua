-- A TLS client that names no CA (no ca, ca_file or ca_dir) against two
-- servers on 127.0.0.1: one whose certificate the test CA signed
-- (server.pem), one that signed its own (selfsigned.pem). Prints one line
-- per server: "server: ok" or "server: <error>". The caller decides what the
-- system store holds (SSL_CERT_FILE on Linux; the Windows ROOT store under
-- Wine) and what the lines must say.
--   tls_system_ca.lua CERT_DIR
local sock = require'sock'
local cert_dir = assert(arg[1], 'usage: tls_system_ca.lua CERT_DIR')

local function try(name)
	local l = assert(sock.listen_tls('127.0.0.1', 0,
		{cert_file = cert_dir .. '/' .. name .. '.pem', key_file = cert_dir .. '/' .. name .. '.key'}))
	local port = l:getsockname():port()
	local deadline = sock.clock() + 10
	sock.thread(function()
		local c = l:accept(deadline)
		if not c then return end
		local buf = sock.buffer(4)
		local n = c:recv(buf, 4, deadline)
		if n and n > 0 then c:send(buf, n, deadline) end
		c:close()
	end)
	local result
	local c, err = sock.connect_tls('localhost', port, {}, deadline)
	if c then
		assert(c:send('ping', nil, deadline))
		local buf = sock.buffer(4)
		local _, n = c:recvn(buf, 4, deadline)
		result = n == 4 and buf:tostring(1, 4) == 'ping' and 'ok' or 'echo failed'
		c:close()
	else
		result = tostring(err)
	end
	l:close()
	print(name .. ': ' .. result)
end

sock.run(function()
	try('server')
	try('selfsigned')
end)
