-- Lifetimes: what happens to threads, sockets and buffers when an operation
-- is pending and the program closes, drops or stops things.
--  - closing a socket wakes every thread waiting on it (reader and writer,
--    recv, recvn, send, accept) with nil, 'closed' and the partial counts;
--  - a thread blocked on I/O or a timer is kept alive by the wait, and so are
--    its socket and its buffer, even when nothing else refers to them: a full
--    collection changes nothing, and the operation completes correctly;
--  - once it has finished, the thread, its sockets and their fds are
--    collected;
--  - a suspended thread that is never resumed is collected with its sockets;
--  - sock.stop() with work pending returns from start(), and a later start()
--    finishes that work, including I/O that became ready meanwhile;
--  - the Lua state may close with operations pending (children/state_close).
local T = require'testlib'
local child = require'child'
local sock = T.sock

local latch = T.latch

-- job:wakeup() runs the woken thread at once, inside the caller of done():
-- a zero sleep lets that caller run to its end (it is resumed first).
local function let_others_finish()
	sock.sleep(0)
end

local function full_gc()
	for _ = 1, 3 do collectgarbage() end
end

T.test('close wakes every waiter: reader, writer, recvn with its partial count', function()
	local a, b = assert(sock.socketpair())
	local l = latch(3)
	local r_recv, r_send, r_recvn
	sock.thread(function()
		r_recv = {a:recv(sock.buffer(16), 16, T.deadline())}
		l.done()
	end)
	T.eq(r_recv, nil, 'recv should be waiting')
	sock.thread(function() -- fills the socket buffer, then waits
		r_send = {a:send(string.rep('w', 4 * 1024 * 1024), nil, T.deadline())}
		l.done()
	end)
	T.eq(r_send, nil, 'send should be waiting')
	local c, s = T.tcp_pair()
	assert(c:send('abc'))
	sock.thread(function()
		r_recvn = {s:recvn(sock.buffer(10), 10, T.deadline())}
		l.done()
	end)
	T.eq(r_recvn, nil, 'recvn should be waiting')
	a:close()
	s:close()
	assert(l.wait(), 'a waiter was not woken by close')
	T.eq(r_recv[1], nil)
	T.eq(r_recv[2], 'closed')
	T.eq(r_send[1], nil)
	T.eq(r_send[2], 'closed')
	assert(type(r_send[3]) == 'number' and r_send[3] > 0 and r_send[3] < 4 * 1024 * 1024,
		'send reports what it sent before the close: ' .. tostring(r_send[3]))
	T.eq(r_recvn[1], nil)
	T.eq(r_recvn[2], 'closed')
	T.eq(r_recvn[3], 3)
	-- closed stays closed, and closing again is harmless
	T.eq(select(2, a:recv(sock.buffer(1), 1)), 'closed')
	assert(a:close())
	b:close()
	c:close()
end)

T.test('close wakes a thread waiting in accept', function()
	local l = T.listener()
	local done = latch(1)
	local r
	sock.thread(function()
		r = {l:accept(T.deadline())}
		done.done()
	end)
	l:close()
	assert(done.wait(), 'accept was not woken')
	T.eq(r[1], nil)
	T.eq(r[2], 'closed')
end)

T.test('a thread blocked in recv is kept alive by the wait, with its socket and buffer', function()
	local a, b = assert(sock.socketpair())
	local weak = setmetatable({}, {__mode = 'v'})
	local result
	local l = latch(1)
	do
		-- The socket and the buffer are only on the waiting call's stack.
		local co = sock.thread(function(s)
			local buf = sock.buffer(16)
			local n, err = s:recv(buf, 16, T.deadline())
			result = {n, err, n and buf:tostring(1, n)}
			l.done()
		end, a)
		weak.co, weak.a = co, a
	end
	a = nil
	full_gc()
	assert(weak.co, 'the waiting thread was collected')
	assert(weak.a, 'the socket of a pending recv was collected')
	T.eq(result, nil)
	assert(b:send('hello'))
	assert(l.wait(), 'the recv did not complete')
	T.eq(result[1], 5)
	T.eq(result[3], 'hello')
	-- Finished now: the thread and the socket go, and the fd with them.
	let_others_finish()
	local fds = T.fd_count()
	full_gc()
	T.eq(weak.co, nil, 'the finished thread is still alive')
	T.eq(weak.a, nil, 'the socket of the finished thread is still alive')
	if not T.skip_part('the collected socket\'s fd is closed', T.needs_fd_count()) then
		T.eq(T.fd_count(), fds - 1, 'the collected socket kept its fd')
	end
	b:close()
end)

T.test('a forgotten thread blocked in recv sees the peer close (0) after a collection', function()
	local a, b = assert(sock.socketpair())
	local result
	local l = latch(1)
	sock.thread(function(s)
		local n, err = s:recv(sock.buffer(16), 16, T.deadline())
		result = {n, err}
		s:close()
		l.done()
	end, a)
	a = nil
	full_gc()
	b:close()
	assert(l.wait(), 'the recv did not complete')
	T.eq(result[1], 0) -- end of stream
end)

T.test('a forgotten sleeper wakes on time, and a forgotten sleep job with it', function()
	local weak = setmetatable({}, {__mode = 'v'})
	local woke
	local l = latch(2)
	local t0 = sock.clock()
	do
		local job = sock.sleep_job()
		weak.job = job
		sock.thread(function(j)
			j:sleep(0.05)
			woke = sock.clock() - t0
			l.done()
		end, job)
		sock.thread(function()
			sock.sleep(0.05)
			l.done()
		end)
	end
	full_gc()
	assert(weak.job, 'the sleep job of a sleeping thread was collected')
	assert(l.wait(), 'a sleeper did not wake')
	assert(woke >= 0.05, 'woke early: ' .. woke)
end)

T.plain('a suspended thread that is never resumed is collected, and its sockets closed', function()
	local weak = setmetatable({}, {__mode = 'v'})
	local fds = T.fd_count()
	do
		local co = sock.thread(function()
			local s = assert(sock.tcp())
			local u = assert(sock.udp())
			sock.suspend()
			s:close()
			u:close()
		end)
		weak.co = co
	end
	T.eq(T.fd_count(), fds + 2)
	full_gc()
	T.eq(weak.co, nil, 'the suspended thread was not collected')
	T.eq(T.fd_count(), fds, 'its sockets kept their fds')
end, T.needs_fd_count())

-- A thread the loop resumes from a finished wait stays anchored while it
-- runs, and takes its anchor over if it waits again (the scheduler's held
-- slot); when it gives control back any other way the anchor must go.
T.plain('a thread that suspends after its I/O completed is collected when forgotten', function()
	local a, b = assert(sock.socketpair())
	local weak = setmetatable({}, {__mode = 'v'})
	local suspended = false
	weak.co = sock.thread(function()
		local n = a:recv(sock.buffer(16), 16, T.deadline())  -- waits: the loop resumes it
		suspended = n == 1
		sock.suspend()
	end)
	sock.thread(function() assert(b:send('x')) end)
	sock.start(5)
	assert(suspended, 'the recv did not complete')
	full_gc()
	T.eq(weak.co, nil, 'the suspended thread was not collected')
	a:close()
	b:close()
end)

T.plain('a thread that transfers away after its I/O completed is collected; the one it woke still waits', function()
	local a, b = assert(sock.socketpair())
	local c, d = assert(sock.socketpair())
	local weak = setmetatable({}, {__mode = 'v'})
	local transferred, got = false, nil
	do
		local waiter = sock.newthread(function()
			local buf = sock.buffer(16)
			local n = c:recv(buf, 16, T.deadline())  -- waits, in the resume the loop made for the other
			got = n and buf:tostring(1, n)
		end)
		weak.waiter = waiter
		weak.co = sock.thread(function()
			assert(a:recv(sock.buffer(16), 16, T.deadline()))
			transferred = true
			sock.transfer(waiter)  -- never transferred back to
		end)
	end
	sock.thread(function() assert(b:send('x')) end)
	for _ = 1, 100 do
		if transferred then break end
		sock.poll(5)
	end
	assert(transferred, 'the recv did not complete')
	full_gc()
	T.eq(weak.co, nil, 'the thread that transferred away was not collected')
	assert(weak.waiter, 'the thread waiting on I/O was collected')
	sock.thread(function() assert(d:send('y')) end)
	sock.start(5)
	T.eq(got, 'y')
	for _, s in ipairs{a, b, c, d} do s:close() end
end)

T.plain('a thread that fails after its I/O completed is collected, and its error handled', function()
	local a, b = assert(sock.socketpair())
	local weak = setmetatable({}, {__mode = 'v'})
	local errors = {}
	sock.onerror(function(err) errors[#errors + 1] = tostring(err) end)
	weak.co = sock.thread(function()
		assert(a:recv(sock.buffer(16), 16, T.deadline()))
		error('failed after the recv')
	end)
	sock.thread(function() assert(b:send('x')) end)
	sock.start(5)
	sock.onerror(nil)
	T.eq(#errors, 1)
	assert(errors[1]:find('failed after the recv', 1, true), errors[1])
	full_gc()
	T.eq(weak.co, nil, 'the failed thread was not collected')
	a:close()
	b:close()
end)

T.plain('explicit __gc and __close calls leave a socket that refuses use, and a clean collection', function()
	local c, s
	sock.run(function() c, s = T.tcp_pair() end)
	local mt = getmetatable(c)  -- a socket object's (a table's) metatable
	local umt = getmetatable(rawget(s, 0))  -- its socket userdata's, which has __gc
	local l = false
	local r
	sock.thread(function() -- waiting on s when its __gc is called by hand
		r = {s:recv(sock.buffer(4), 4, T.deadline())}
		l = true
	end)
	umt.__gc(rawget(s, 0))
	umt.__gc(rawget(s, 0)) -- twice
	sock.start(5)
	assert(l, 'the waiter was not woken by __gc')
	T.eq(r[2], 'closed')
	T.raises('socket expected', sock._socket_methods.recv, s, sock.buffer(1), 1)
	if mt.__close then
		mt.__close(c)
		T.eq(c:closed(), true)
	end
	umt.__gc(42) -- not a socket: ignored
	mt.__close(42)
	T.eq(mt.__index(42, 'nothing'), nil)
	c, s = nil, nil
	full_gc()
end)

T.plain('stop() with work pending returns from start(); a later start() finishes it', function()
	local a, b = assert(sock.socketpair())
	local got
	local ticks = 0
	sock.thread(function()
		local buf = sock.buffer(16)
		local n = assert(a:recv(buf, 16, sock.clock() + 5))
		got = buf:tostring(1, n)
	end)
	sock.thread(function()
		for _ = 1, 3 do
			sock.sleep(0.001)
			ticks = ticks + 1
		end
	end)
	sock.runafter(0, function() sock.stop() end)
	local t0 = sock.clock()
	sock.start(5)
	assert(sock.clock() - t0 < 4, 'start did not return on stop()')
	T.eq(got, nil)
	assert(ticks < 3, 'the loop ran on after stop()')
	assert(sock._waiting_count() >= 1, 'the pending work is gone')
	-- Data arrives while the loop is stopped...
	sock.thread(function() assert(b:send('while stopped')) end)
	-- ...and the next start() delivers it and finishes the rest.
	sock.start(5)
	T.eq(got, 'while stopped')
	T.eq(ticks, 3)
	T.eq(sock._waiting_count(), 0)
	a:close()
	b:close()
end)

T.plain('the Lua state closes cleanly with operations pending', function()
	local status, out = child.run('state_close.lua')
	assert(status == 0, 'child failed (' .. tostring(status) .. '):\n' .. out)
	assert(out:find('state closes with 6 threads waiting', 1, true), out)
end)

T.done()
