-- The Lua state closes while threads wait: in recv, accept, send (on a full
-- buffer), connect-free sleeps and a sleep job. Every finalizer runs with
-- the operations pending; the process must exit cleanly (and, under the
-- sanitizers, without an error or a leak).
local sock = require'sock'

local a, b = assert(sock.socketpair())  -- a thread waits in a:recv
local w, w_peer = assert(sock.socketpair()) -- a thread waits in w:send (nobody reads w_peer)
local l = assert(sock.tcp())      -- c connects here (nobody accepts)
assert(l:listen('127.0.0.1', 0))
local l2 = assert(sock.tcp())     -- a thread waits in accept here
assert(l2:listen('127.0.0.1', 0))
local c = assert(sock.tcp())
local job = sock.sleep_job()

sock.thread(function() a:recv(sock.buffer(16), 16) end)
sock.thread(function() l2:accept() end)
sock.thread(function() w:send(string.rep('x', 8 * 1024 * 1024)) end) -- fills the buffer, then waits
sock.thread(function()
	assert(c:connect('127.0.0.1', l:getsockname():port()))
	c:recv(sock.buffer(16), 16)
end)
sock.thread(function() sock.sleep(1000) end)
sock.thread(function() job:sleep(1000) end)
sock.poll(0) -- the connect completes; its thread then waits in recv
assert(sock._waiting_count() == 6, sock._waiting_count() .. ' threads waiting, not 6')
print('state closes with 6 threads waiting')
-- (the end of the script closes the state)
