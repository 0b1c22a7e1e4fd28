-- Starts a thread that waits, and never runs the loop: the program ends
-- with nothing done, which sock points out on stderr.
local sock = require'sock'
sock.thread(function()
	sock.sleep(1)
	print('never printed')
end)
print('end of script')
