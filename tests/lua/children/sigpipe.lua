-- Run with SIGPIPE at its default disposition (which kills): writing to a
-- socket whose peer has gone must return an error, never raise the signal.
local sock = require'sock'

sock.run(function()
	-- A stream socketpair whose other end is closed.
	local a, b = assert(sock.socketpair())
	b:close()
	local ok, err = a:send('x', nil, sock.clock() + 5)
	assert(ok == nil and err == 'broken_pipe', tostring(err))
	print('socketpair: ' .. err)
	a:close()

	-- TCP: the peer closed; keep writing until the error shows.
	local l = assert(sock.tcp())
	assert(l:listen('127.0.0.1', 0))
	local c = assert(sock.tcp())
	assert(c:connect('127.0.0.1', l:getsockname():port(), sock.clock() + 5))
	local s = assert(l:accept(sock.clock() + 5))
	s:close()
	local last
	for _ = 1, 1000 do
		local sent, e = c:send(string.rep('y', 65536), nil, sock.clock() + 5)
		if not sent then last = e break end
	end
	assert(last == 'broken_pipe' or last == 'connection_reset', tostring(last))
	print('tcp: ' .. last)
	c:close()
	l:close()
end)
print('survived')
