-- A fast reader in a process of its own: connects to 127.0.0.1:PORT, reads
-- everything until the end of the stream (or 20 s), prints how many bytes.
local sock = require'sock'
local port = assert(tonumber(arg[1]), 'usage: drain.lua PORT')
local total = 0
sock.run(function()
	local c = assert(sock.tcp())
	assert(c:connect('127.0.0.1', port, sock.clock() + 5))
	local size = 1024 * 1024
	local buf = sock.buffer(size)
	local deadline = sock.clock() + 20
	while true do
		local n = c:recv(buf, size, deadline)
		if not n or n == 0 then break end
		total = total + n
	end
	c:close()
end)
print('drained ' .. total)
