-- Run by luarocks_roundtrip.sh with LUA_CPATH naming only the tree under
-- test: the module must load from there and work (a TCP exchange on
-- loopback, a sleep).
local sock = require'sock'
local version = _VERSION:match('%d+%.%d+')

local got = sock.run(function()
	local listener = assert(sock.tcp())
	assert(listener:listen('127.0.0.1', 0))
	local port = listener:getsockname():port()
	sock.thread(function()
		local c = assert(listener:accept(sock.clock() + 5))
		local buf = sock.buffer(5)
		assert(c:recvn(buf, 5, sock.clock() + 5))
		assert(c:send(buf, 5, sock.clock() + 5))
		c:close()
	end)
	local c = assert(sock.tcp())
	assert(c:connect('127.0.0.1', port, sock.clock() + 5))
	assert(c:send('hello', nil, sock.clock() + 5))
	sock.sleep(0.01)
	local buf = sock.buffer(5)
	assert(c:recvn(buf, 5, sock.clock() + 5))
	c:close()
	listener:close()
	return buf:tostring()
end)
assert(got == 'hello', 'echo returned ' .. tostring(got))
-- The rock links OpenSSL (SOCK_TLS=ON): TLS and luapower's module name are there.
assert(sock._tls_available, 'the installed sock has no TLS')
assert(type(require'sock_libtls'.client_stcp) == 'function')
print(('installed sock works on Lua %s (%s backend)'):format(version, sock.backend()))
