-- Wait records: a waiting call is armed only once its thread has yielded,
-- stays busy until its thread has been given its results, keeps what it
-- waits on alive until then, and leaves nothing behind when it cannot wait
-- or its thread is resumed from outside the loop.
local T = require'testlib'
local sock = T.sock

-- Lua 5.3+ can tell who resumes a waiting C function (continuations);
-- 5.1, 5.2 and LuaJIT cannot.
local has_continuations = not jit and _VERSION >= 'Lua 5.3'
-- 5.3+ and LuaJIT say in advance when a call cannot yield; 5.1 and 5.2 only
-- fail in the attempt.
local knows_yieldable = jit ~= nil or _VERSION >= 'Lua 5.3'

-- Hold the loop (no yield) until the clock passes t.
local function hold_until(t)
	while sock.clock() < t do end
end

-- Send without yielding: from a plain coroutine, which cannot wait, a send is
-- made at once (on io_uring a thread's small send waits for the next turn).
local function send_now(c, s)
	assert(coroutine.wrap(function() return c:send(s) end)())
end

T.test('a second reader in the turn the first is woken gets busy; the first gets its data', function()
	local c, s = T.tcp_pair()
	local a = T.go(function() return s:recv(sock.buffer(8), 8, T.deadline()) end)  -- waits: nothing sent yet
	local wake = sock.clock() + 0.02
	local b = T.go(function()
		sock.sleep_until(wake)
		return s:recv(sock.buffer(8), 8, T.deadline())
	end)
	send_now(c, 'x')
	-- The data's completion and b's timer now fall in the same turn of the
	-- loop, and timers run before completions: b calls recv while a's
	-- record is completed but its thread not yet resumed.
	hold_until(wake + 0.005)
	local bn, berr = b()
	T.eq(bn, nil)
	T.eq(berr, 'busy')
	T.eq(a(), 1)
	c:close()
	s:close()
end)

T.test('a listener referenced only by its waiting accept lives until accept has returned', function()
	local port
	local function listener()
		local l, p = T.listener()
		port = p
		return l
	end
	local accepted = T.go(function()
		local s, err = listener():accept(T.deadline())  -- nothing else refers to the listener
		return s, err
	end)
	-- Collect as eagerly as Lua can while the accepted socket is made, which
	-- is when the results are pushed.
	local pause = collectgarbage('setpause', 0)
	local stepmul = collectgarbage('setstepmul', 1000000)
	collectgarbage()
	local c = assert(sock.tcp())
	assert(c:connect('127.0.0.1', port, T.deadline()))
	local s, err = accepted()
	collectgarbage('setpause', pause)
	collectgarbage('setstepmul', stepmul)
	assert(s, err)
	T.eq(s.remote_port, c:getsockname():port())
	s:close()
	c:close()
	collectgarbage()
end)

T.test('a sleep where Lua cannot yield fails and leaves no timer behind', function()
	local ok, err = pcall(string.gsub, 'a', 'a', function() sock.sleep(0.05) end)
	T.eq(ok, false)
	if knows_yieldable then
		assert(tostring(err):find('sleep: cannot wait here', 1, true), err)
	else
		assert(tostring(err):find('yield across', 1, true), err)
	end
	T.eq(sock._waiting_count(), 0)  -- nothing armed
	-- The failed sleep's timer would end this one early, and would later
	-- resume this thread behind its back.
	local t0 = sock.clock()
	sock.sleep(0.2)
	assert(sock.clock() - t0 >= 0.19, 'woken early')
end)

T.test('a read where Lua cannot yield fails and leaves the socket usable', function()
	local c, s = T.tcp_pair()
	local ok, err = pcall(table.sort, {1, 2, 3}, function(x, y)
		s:readline(T.deadline())
		return x < y
	end)
	T.eq(ok, false)
	assert(tostring(err):find(knows_yieldable and 'readline: cannot wait here' or 'yield across', 1, true), err)
	T.eq(sock._waiting_count(), 0)
	assert(c:send('line\n'))
	T.eq(s:readline(T.deadline()), 'line')  -- not 'busy'
	c:close()
	s:close()
end)

-- (Only where the waiting call can tell: on 5.1, 5.2 and LuaJIT a thread
-- resumed that way has dropped what its wait kept alive, and the docs say
-- never to do it.)
if has_continuations then
	-- Resume co, waiting in `fname`, from outside the loop: the call raises.
	local function resume_from_outside(co, fname)
		local ok, res = coroutine.resume(co, 'bogus')
		T.eq(ok, false)
		assert(tostring(res):find(fname .. ': this thread was resumed from outside the sock loop', 1, true), res)
	end

	-- f() once a withdrawn wait has let go of its socket: calls on it get
	-- 'busy' until the withdrawal has completed.
	local function after_withdrawal(f)
		local r, err
		repeat
			r, err = f()
			if err == 'busy' then sock.sleep(0) end
		until err ~= 'busy'
		return r, err
	end
	local function readn_after_withdrawal(s, n)
		local deadline = T.deadline(2)
		return after_withdrawal(function() return s:readn(n, deadline) end)
	end

	T.test('a thread resumed from outside the loop while it waits gets an error; its wait is withdrawn', function()
		local c, s = T.tcp_pair()
		local co = sock.thread(function()
			return s:recv(sock.buffer(8), 8, T.deadline())
		end)
		resume_from_outside(co, 'recv')
		assert(c:send('data'))
		-- Nothing is lost: whether the withdrawn recv took the bytes (io_uring
		-- may complete it before its cancel) or not, the next read has them.
		T.eq(readn_after_withdrawal(s, 4), 'data')
		c:close()
		s:close()
	end)

	T.test('a withdrawn recvn gives back the read-ahead bytes it took, in front of what came after', function()
		local c, s = T.tcp_pair()
		assert(c:send('ab\ncd'))
		T.eq(s:readline(T.deadline()), 'ab')  -- 'cd' stays read ahead (it came with the line)
		T.eq(s:buffered(), 2)
		local co = sock.thread(function()
			return s:recvn(sock.buffer(6), 6, T.deadline())  -- takes 'cd', waits for 4 more
		end)
		T.eq(s:buffered(), 0)
		resume_from_outside(co, 'recvn')
		assert(c:send('efgh'))
		T.eq(readn_after_withdrawal(s, 6), 'cdefgh')
		c:close()
		s:close()
	end)

	T.test('an accept resumed from outside the loop leaves no connection behind', function()
		local l, port = T.listener()
		local co = sock.thread(function() return l:accept(T.deadline()) end)
		resume_from_outside(co, 'accept')
		local c = assert(sock.tcp())
		assert(c:connect('127.0.0.1', port, T.deadline()))
		-- The connection is accepted by the withdrawn accept (io_uring) or
		-- waits in the backlog (epoll); either way the next accept, or the
		-- close of the listener, takes care of it, and no fd is left open.
		local deadline = T.deadline(2)
		local s = after_withdrawal(function() return l:accept(deadline) end)
		if s then s:close() end
		c:close()
		l:close()
	end)
end

T.test('resume and transfer refuse a thread that waits; wakeup resumes a sleeper once', function()
	local job = sock.sleep_job()
	local co = sock.thread(function() return job:sleep(5) end)
	T.raises('the thread is waiting on I/O or a timer', sock.resume, co)
	T.raises('the thread is waiting on I/O or a timer', sock.transfer, co)
	T.eq(job:wakeup('v'), true)
	T.eq(job:wakeup('v'), false)
	T.eq(coroutine.status(co), 'dead')
	T.eq(sock._waiting_count(), 0)
end)

T.test('a deadline already past when the wait is armed gives timeout at once', function()
	local c, s = T.tcp_pair()
	local n, err = s:recv(sock.buffer(4), 4, sock.clock() - 1)
	T.eq(n, nil)
	T.eq(err, 'timeout')
	local line, lerr = s:readline(sock.clock() - 1)
	T.eq(line, nil)
	T.eq(lerr, 'timeout')
	T.eq(sock._waiting_count(), 0)
	c:close()
	s:close()
end)

T.done()
