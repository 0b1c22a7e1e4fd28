-- Threads: newthread, resume, suspend, transfer, thread, cowrap, yield,
-- currentthread, onthreadfinish, threadenv, poll, start, stop, run, and how
-- errors inside threads come out.
local T = require'testlib'
local sock = T.sock

T.plain('newthread makes a coroutine that does not start by itself', function()
	local ran = false
	local co = sock.newthread(function() ran = true end)
	T.eq(type(co), 'thread')
	T.eq(ran, false)
	sock.resume(co)
	T.eq(ran, true)
	T.raises("bad argument #1 to 'newthread'", sock.newthread, 42)
end)

T.plain('resume returns what the thread passes to its next suspend', function()
	local co = sock.newthread(function(a, b)
		local x, y = sock.suspend(a + b, 'first')
		sock.suspend(x .. y)
	end)
	local s, w = sock.resume(co, 1, 2)
	T.eq(s, 3)
	T.eq(w, 'first')
	T.eq(sock.resume(co, 'p', 'q'), 'pq')
	T.eq(select('#', sock.resume(co)), 0)  -- the thread finished
end)

T.plain('thread returns the coroutine, not the resume values', function()
	local co = sock.thread(function() sock.suspend('v') end)
	T.eq(type(co), 'thread')
	T.eq(coroutine.status(co), 'suspended')
end)

T.plain('run returns all of f\'s results', function()
	local a, b, c = sock.run(function(x) sock.sleep(0.001) return x, 'two', nil end, 'one')
	T.eq(a, 'one')
	T.eq(b, 'two')
	T.eq(c, nil)
	T.eq(select('#', sock.run(function() return 1, nil, 3 end)), 3)
end)

T.test('run inside a thread just calls f', function()
	local outer = sock.currentthread()
	local inner = sock.run(function() return sock.currentthread() end)
	T.eq(inner, outer)
end)

T.test('suspend and resume between threads; values both ways', function()
	local log = {}
	local waiter = sock.thread(function()
		local v = sock.suspend()
		log[#log + 1] = 'woke with ' .. v
	end)
	T.eq(#log, 0)
	sock.resume(waiter, 'hello')
	T.eq(log[1], 'woke with hello')
end)

T.test('transfer hands control to another thread and back', function()
	local me = sock.currentthread()
	local other = sock.newthread(function(x)
		local back = sock.transfer(me, x * 2)
		sock.transfer(me, back + 1)
	end)
	T.eq(sock.transfer(other, 21), 42)
	T.eq(sock.transfer(other, 99), 100)
end)

T.test('transfer refuses a thread that waits on I/O', function()
	local job = sock.sleep_job()
	local sleeper = sock.thread(function() job:sleep(10) end)
	T.raises('waiting on I/O or a timer', sock.transfer, sleeper)
	T.raises('waiting on I/O or a timer', sock.resume, sleeper)
	job:wakeup()
end)

T.test('currentthread is the running sock thread', function()
	local co, is_main = sock.currentthread()
	T.eq(type(co), 'thread')
	T.eq(is_main, false)
	local seen
	local t = sock.thread(function() seen = sock.currentthread() end)
	T.eq(seen, t)
end)

T.plain('currentthread outside any thread is the main thread', function()
	local co, is_main = sock.currentthread()
	T.eq(is_main, true)
end)

T.test('cowrap iterators may do I/O; yield passes values to the caller', function()
	local c, s = T.tcp_pair()
	assert(c:send('abcdef'))
	c:close()
	local chunks = sock.cowrap(function(yield, size)
		local buf = sock.buffer(size)
		while true do
			local n = assert(s:recv(buf, size, T.deadline()))
			if n == 0 then return end
			yield(buf:tostring(1, n))
		end
	end)
	local got = {}
	local chunk = chunks(2)  -- the first call's arguments go to f after yield
	while chunk do
		got[#got + 1] = chunk
		chunk = chunks()
	end
	T.eq(table.concat(got), 'abcdef')
	s:close()
end)

T.test('cowrap returns the wrapper and its thread; yield returns the next call\'s arguments', function()
	local seen = {}
	local f, co = sock.cowrap(function(yield, a)
		seen[#seen + 1] = a
		local b, c = yield('first')
		seen[#seen + 1] = b .. c
		sock.sleep(0.001)  -- waits pass through to this thread
		return 'last'
	end)
	T.eq(type(co), 'thread')
	T.eq(coroutine.status(co), 'suspended')
	T.eq(f('a'), 'first')
	T.eq(f('b', 'c'), 'last')
	T.eq(coroutine.status(co), 'dead')
	T.eq(table.concat(seen, ','), 'a,bc')
	T.raises('cannot resume dead coroutine', f)
end)

T.test('a cowrap yield from a nested cowrap goes to its own wrapper\'s caller', function()
	-- What luapower's HTTP stack does: a writer made with cowrap, called by
	-- a filter (another cowrap) inside it, yields the body out to whoever
	-- pulls from the outer wrapper, and does I/O in between.
	local c, s = T.tcp_pair()
	local body = sock.cowrap(function(yield)
		local filter = sock.cowrap(function(_, chunk)
			while chunk do
				assert(c:send(chunk, nil, T.deadline()))  -- I/O inside the nested one
				yield(chunk:upper())                    -- the outer wrapper's yield
				chunk = coroutine.yield()                -- plain: to the filter's caller
			end
		end)
		filter('one')
		filter('two')
		filter(nil)
		return nil
	end)
	local got = {}
	local chunk = body()
	while chunk do
		got[#got + 1] = chunk
		chunk = body()
	end
	T.eq(table.concat(got, ','), 'ONE,TWO')
	T.eq(s:readn(6, T.deadline()), 'onetwo')
	c:close()
	s:close()
end)

T.test('cowrap raises the wrapped function\'s errors', function()
	local f = sock.cowrap(function() sock.sleep(0.001) error('inner boom') end)
	T.raises('inner boom', f)
	T.raises("bad argument #1 to 'cowrap'", sock.cowrap, 42)
end)

T.test('recv and send in a plain coroutine work when they need not wait, and raise when they would', function()
	local a, b = sock.socketpair()
	local buf = sock.buffer(8)
	local r = {coroutine.wrap(function()
		assert(a:send('hi'))
		return b:recv(buf)
	end)()}
	T.eq(r[1], 2)
	T.eq(buf:tostring(1, 2), 'hi')
	-- nothing there: recv would wait, which a plain coroutine cannot
	local ok, err = pcall(coroutine.wrap(function() return b:recv(buf) end))
	T.eq(ok, false)
	assert(tostring(err):find("recv: cannot wait inside a plain coroutine", 1, true), err)
	-- and nothing is left behind: the socket is free for the thread
	assert(a:send('ok'))
	T.eq(b:recv(buf, 8, T.deadline()), 2)
	a:close()
	b:close()
end)

T.test('a plain coroutine cannot wait, and says how to', function()
	local co = coroutine.create(function() sock.sleep(0.01) end)
	local ok, err = coroutine.resume(co)
	T.eq(ok, false)
	assert(tostring(err):find('sock.cowrap', 1, true), err)
end)

T.plain('onthreadfinish runs when the thread ends', function()
	local finished
	local co = sock.newthread(function() sock.sleep(0.001) end)
	sock.onthreadfinish(co, function(t) finished = t end)
	sock.run(function() sock.resume(co) end)
	T.eq(finished, co)
end)

T.plain('threadenv is a weak per-thread table', function()
	local co = sock.newthread(function() end)
	sock.threadenv[co] = {x = 1}
	T.eq(sock.threadenv[co].x, 1)
	T.eq(getmetatable(sock.threadenv).__mode, 'k')
end)

T.plain('poll with nothing waiting returns a false first value at once', function()
	local t0 = sock.clock()
	local ok, why = sock.poll(5)
	T.eq(ok, false)
	T.eq(why, 'empty')
	assert(sock.clock() - t0 < 1)
end)

T.plain('poll returns false, timeout when nothing happens in time', function()
	local job = sock.sleep_job()
	local co = sock.thread(function() job:sleep(30) end)
	local t0 = sock.clock()
	local ok, why = sock.poll(0.02)
	T.eq(ok, false)
	T.eq(why, 'timeout')
	assert(sock.clock() - t0 >= 0.015)
	job:wakeup()
	T.eq(coroutine.status(co), 'dead')
end)

T.plain('poll returns true after resuming a thread', function()
	local done = false
	sock.thread(function() sock.sleep(0.001); done = true end)
	local ok = sock.poll(5)
	T.eq(ok, true)
	T.eq(done, true)
end)

T.plain('stop ends start; a later start resumes the pending work', function()
	local ticks = 0
	sock.thread(function()
		for i = 1, 3 do
			sock.sleep(0.001)
			ticks = ticks + 1
			if i == 1 then sock.stop() end
		end
	end)
	sock.start()
	T.eq(ticks, 1)
	sock.start()
	T.eq(ticks, 3)
end)

T.plain('stop outside a running loop does not cut the next start short', function()
	sock.stop()
	local done = false
	sock.thread(function() sock.sleep(0.01); done = true end)
	sock.start()
	T.eq(done, true)
end)

T.plain('an error in a thread is raised out of start with its traceback', function()
	local function deep() error('thread failed here') end
	sock.thread(function() sock.sleep(0.001); deep() end)
	local ok, err = pcall(sock.start)
	T.eq(ok, false)
	assert(err:find('thread failed here', 1, true), err)
	assert(err:find('deep', 1, true) or err:find('traceback', 1, true), 'no traceback in: ' .. err)
end)

T.plain('an error before the first wait is raised out of thread()', function()
	T.raises('early failure', sock.thread, function() error('early failure') end)
end)

T.plain('onerror installs a handler instead of raising', function()
	local seen_err, seen_co
	sock.onerror(function(err, co) seen_err, seen_co = err, co end)
	local co = sock.thread(function() sock.sleep(0.001); error('handled') end)
	assert(sock.start())
	sock.onerror(nil)
	assert(seen_err:find('handled', 1, true))
	T.eq(seen_co, co)
end)

T.plain('other threads keep running after one failed', function()
	local survivor_done = false
	sock.thread(function() sock.sleep(0.001); error('one fails') end)
	sock.thread(function() sock.sleep(0.005); survivor_done = true end)
	local ok = pcall(sock.start)
	T.eq(ok, false)
	assert(sock.start())
	T.eq(survivor_done, true)
end)

T.test('many threads interleave on sleeps in deadline order', function()
	-- One base for every deadline: started one after another, relative
	-- sleeps would differ by how long each start took (25 ms for the first
	-- under valgrind, which put 5 first).
	local order = {}
	local base = sock.clock()
	for i = 5, 1, -1 do
		sock.thread(function()
			sock.sleep_until(base + i * 0.002)
			order[#order + 1] = i
		end)
	end
	while #order < 5 do sock.sleep(0.002) end
	T.eq(table.concat(order, ','), '1,2,3,4,5')
end)

T.test('pcall and xpcall may wait inside', function()
	local ok, v = sock.pcall(function() sock.sleep(0.001) return 'fine' end)
	T.eq(ok, true)
	T.eq(v, 'fine')
	local ok2, e = sock.pcall(function() sock.sleep(0.001) error('oops', 0) end)
	T.eq(ok2, false)
	T.eq(e, 'oops')
	local ok3, e3 = sock.xpcall(function(x) sock.sleep(0.001) error(x, 0) end, function(m) return 'handled: ' .. m end, 'bad')
	T.eq(ok3, false)
	T.eq(e3, 'handled: bad')
end)

T.test('sock.backend(name) takes the name of the backend that runs, on every backend', function()
	local name = sock.backend()
	T.eq((sock.backend(name)), name)
	T.raises("unknown backend 'nope'", sock.backend, 'nope')
end)

T.done()
