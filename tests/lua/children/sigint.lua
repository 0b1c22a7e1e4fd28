-- Waits in the loop (a 5 s sleep) after creating the file named by arg[1],
-- so that the parent knows when to send SIGINT. The standalone interpreter
-- must then stop with "interrupted!" at once, as it does outside sock.
local sock = require'sock'
local ready = assert(arg[1], 'usage: sigint.lua READY_FILE')
sock.run(function()
	sock.thread(function()
		sock.sleep(0.01)  -- the loop is running by now
		assert(io.open(ready, 'w')):close()
	end)
	sock.sleep(5)
end)
print('not interrupted')
