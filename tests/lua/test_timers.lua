-- Time: clock, sleep, sleep_until, sleep jobs, runat/runafter/runevery.
local T = require'testlib'
local sock = T.sock

T.plain('clock is monotonic seconds', function()
	local a = sock.clock()
	local b = sock.clock()
	assert(type(a) == 'number' and b >= a)
end)

T.test('sleep waits at least the time asked', function()
	local t0 = sock.clock()
	sock.sleep(0.03)
	assert(sock.clock() - t0 >= 0.03)
end)

T.test('sleep_until a time already past returns at once', function()
	local t0 = sock.clock()
	sock.sleep_until(t0 - 100)
	sock.sleep(0)
	sock.sleep(-1)
	assert(sock.clock() - t0 < 0.5)
end)

-- The process's CPU time: os.clock, except on Windows, whose C runtime's
-- clock() is wall time; sock's test hook asks the system there.
local cpu_time = T.windows and sock._cpu_time or os.clock

T.test('waiting does not spin the CPU', function()
	local cpu0 = cpu_time()
	sock.sleep(0.2)
	local c, s = T.tcp_pair()
	local n, err = s:recv(sock.buffer(4), 4, sock.clock() + 0.2)
	T.eq(err, 'timeout')
	local cpu = cpu_time() - cpu0
	assert(cpu < 0.15, ('used %.3fs of CPU in 0.4s of waiting'):format(cpu))
	c:close()
	s:close()
end)

T.test('sleep job: wakeup passes values to the sleeper', function()
	local job = sock.sleep_job()
	local got
	local sleeper = sock.thread(function() got = {job:sleep(10)} end)
	T.eq(got, nil)
	T.eq(job:wakeup('a', 2, nil, 'd'), true)
	T.eq(got[1], 'a')
	T.eq(got[2], 2)
	T.eq(got[4], 'd')
	T.eq(job:wakeup(), false)  -- nobody sleeps on it now
end)

T.test('sleep job: sleep_until returns nothing when the time comes', function()
	local job = sock.sleep_job()
	T.eq(select('#', job:sleep_until(sock.clock() + 0.005)), 0)
	T.eq(select('#', job:sleep(0.001)), 0)
end)

T.test('sleep job: an infinite sleep ends only by wakeup', function()
	local job = sock.sleep_job()
	local woke = false
	sock.thread(function() job:sleep(math.huge); woke = true end)
	sock.sleep(0.01)
	T.eq(woke, false)
	job:wakeup()
	T.eq(woke, true)
end)

T.test('sleep job: one sleeper at a time', function()
	local job = sock.sleep_job()
	sock.thread(function() job:sleep(10) end)
	T.raises('already has a sleeping thread', job.sleep, job, 1)
	job:wakeup()
end)

T.test('runafter runs f once after the delay', function()
	local t0 = sock.clock()
	local at
	sock.runafter(0.02, function() at = sock.clock() end)
	while not at do sock.sleep(0.005) end
	assert(at - t0 >= 0.02)
end)

T.test('runat runs f at a clock time', function()
	local ran = false
	sock.runat(sock.clock() + 0.01, function() ran = true end)
	sock.sleep(0.05)
	T.eq(ran, true)
end)

T.test('cancel stops a timer before it runs', function()
	local ran = false
	local t = sock.runafter(0.02, function() ran = true end)
	T.eq(t:cancel(), true)
	sock.sleep(0.05)
	T.eq(ran, false)
	T.eq(t:cancel(), false)  -- nothing left to cancel
end)

T.test('runevery repeats until f returns false', function()
	local n = 0
	sock.runevery(0.002, function()
		n = n + 1
		if n == 5 then return false end
	end)
	local deadline = sock.clock() + 5
	while n < 5 and sock.clock() < deadline do sock.sleep(0.005) end
	sock.sleep(0.02)
	T.eq(n, 5)
end)

T.test('runevery stops on cancel', function()
	local n = 0
	local t = sock.runevery(0.002, function() n = n + 1 end)
	while n < 3 do sock.sleep(0.002) end
	t:cancel()
	local at_cancel = n
	sock.sleep(0.02)
	T.eq(n, at_cancel)
end)

T.test('ten thousand sleepers all wake, in deadline order', function()
	local woke, last, disorder = 0, -1, 0
	local base = sock.clock() + 0.05
	for i = 1, 10000 do
		local when = base + ((i * 7919) % 10000) / 1e6
		sock.thread(function()
			sock.sleep_until(when)
			if when < last then disorder = disorder + 1 end
			last = when
			woke = woke + 1
		end)
	end
	while woke < 10000 do sock.sleep(0.01) end
	T.eq(disorder, 0)
end)

T.test('timers can be cancelled in bulk', function()
	local timers, ran = {}, 0
	for i = 1, 5000 do timers[i] = sock.runafter(5, function() ran = ran + 1 end) end
	for i = 1, 5000 do assert(timers[i]:cancel()) end
	T.eq(sock._waiting_count(), 0)  -- this test's thread runs; nothing else waits
	sock.sleep(0.01)
	T.eq(ran, 0)
end)

T.test('bad arguments raise', function()
	T.raises("bad argument #1 to 'sleep'", sock.sleep, 'soon')
	T.raises("bad argument #1 to 'sleep_until'", sock.sleep_until, {})
	local job = sock.sleep_job()
	T.raises("bad argument #2 to 'sleep'", job.sleep, job, 'x')
	T.raises("bad argument #1 to 'wakeup'", job.wakeup, 42)
end)

T.plain('sleeping outside a thread raises', function()
	T.raises('only inside a sock thread', sock.sleep, 0.01)
end)

T.test('a timer re-armed for a time already past does not starve the other timers', function()
	-- runevery(0, f) sleeps until a time that never moves: it fires once per
	-- turn, after the timers due, never ahead of them every time.
	local ticks, slept = 0, false
	local done = T.latch(1)
	sock.thread(function()
		sock.sleep(0.05)
		slept = true
	end)
	sock.runevery(0, function()
		ticks = ticks + 1
		if slept then
			done.done()
			return false
		end
	end)
	assert(done.wait(5), 'the sleeper never woke')
	assert(ticks > 1, ticks)
end)

T.done()
