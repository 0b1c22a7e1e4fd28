-- The cooperative budget: a thread whose operations keep completing at once
-- gives way to the loop (see sched_give_way), so timers fire on time, other
-- threads get their turn, and a connection storm does not freeze a server.
-- The load comes from real peers in other processes: the C load generator
-- of bench/ (SOCK_LOADGEN) and children/drain.lua, a fast reader.
local T = require'testlib'
local sock = T.sock
local child = require'child'

-- How late a 10 ms sleeper may wake while another thread keeps the loop
-- busy. By design: the budget's slice (2 ms) plus one turn of the loop; on
-- an idle machine it wakes 2-3 ms late. The bound leaves room for the peer
-- process and other load sharing the two cores. (Without the budget the
-- same tests see 0.15-2 s.) Under AddressSanitizer every allocation and
-- collection costs several times more: a turn of the storm below takes
-- 25-65 ms there, now and then more than 100 (measured with LuaJIT, both
-- before and after the budget's callers changed), so the sanitizer build,
-- which is there to check memory, gets a wider bound; the release build
-- keeps the tight one that tells a working budget from a missing one.
local sanitized = os.getenv('ASAN_OPTIONS') ~= nil
local MAX_LATE = sanitized and 0.25 or 0.1

-- Lateness counted only while this process ran: over a span of `wall`
-- seconds in which it used `cpu` seconds of CPU, other work on the machine
-- kept it off the CPU for at least wall - cpu (every case here keeps it
-- busy meanwhile), and that much of `late` is the machine's, not the loop's.
-- A loop held by one thread burns CPU all the while: its lateness stays.
local cpu_time = sock._cpu_time
local function late_while_running(late, wall, cpu)
	return late - math.max(0, wall - cpu)
end

-- A thread that sleeps for `period` seconds, again and again until the
-- returned function is called (at least `min` times), and records how late
-- it woke (late_while_running). The returned function stops it and gives
-- the worst lateness.
local function sleeper(period, min)
	local worst, wakes, stop = 0, 0, false
	local done = T.latch(1)
	sock.thread(function()
		while not stop or wakes < min do
			local start, cpu_start = sock.clock(), cpu_time()
			local due = start + period
			sock.sleep_until(due)
			local now = sock.clock()
			worst = math.max(worst, late_while_running(now - due, now - start, cpu_time() - cpu_start))
			wakes = wakes + 1
		end
		done.done()
	end)
	return function()
		stop = true
		assert(done.wait(10), 'the sleeper did not finish')
		return worst, wakes
	end
end

-- Start children/drain.lua in the background, connected to a listener of
-- ours; returns the accepted connection.
local function drain_peer(out_file)
	local l, port = T.listener()
	if T.windows then  -- cmd.exe's start /b
		child.background(('%s %s %d'):format(child.quote(child.interpreter),
			child.quote(child.dir .. '\\children\\drain.lua'), port), out_file)
	else
		local cmd = ('%s %s %d > %s 2>&1 &'):format(child.quote(child.interpreter),
			child.quote(child.dir .. '/children/drain.lua'), port, child.quote(out_file))
		assert(os.execute(cmd))
	end
	local c = assert(l:accept(T.deadline()))
	l:close()
	return c
end

-- Under Wine 8 a drain child started in the background (cmd's start /b)
-- loses its connection: this side sees a reset after the first send while
-- the child, alive, still waits in its recv (seen 2026-12-06; the same
-- exchange within one process works). Cause not found; the bulk cases skip.
local DRAIN_UNDER_WINE = T.not_under_wine('a background drain child loses its connection (a reset here, its recv waits on)')

-- Keep the CPU busy for `secs` without calling sock: work between calls.
local function busy(secs)
	local t_end = sock.clock() + secs
	while sock.clock() < t_end do end
end

local function read_file(path)
	local f = io.open(path)
	if not f then return '' end
	local s = f:read('*a')
	f:close()
	return s
end

-- Run `measure` (which returns true, or false and why) up to `attempts`
-- times, until it holds. These bounds are on wall-clock time and on peers in
-- other processes, which a machine busy with other work can deschedule for
-- 100 ms and more (seen in CI with two other builds running). Only for
-- cases a missing budget fails every time (the first: 2 s late in each
-- attempt) or that do not depend on the budget: a preemption now and then
-- does not fail the suite.
local function holds_within(attempts, measure)
	local why
	for i = 1, attempts do
		local ok
		ok, why = measure()
		if ok then return end
		if i < attempts then io.stderr:write('NOTE test_fairness: attempt ', i, ' of ', attempts, ': ', why, '\n') end
	end
	error(why .. (' (in each of %d attempts)'):format(attempts), 2)
end

T.test('a thread whose sends always complete at once lets a 10 ms sleeper wake on time', function()
	local rx = assert(sock.udp())
	assert(rx:bind('127.0.0.1', 0))
	local tx = assert(sock.udp())
	assert(tx:connect('127.0.0.1', rx:getsockname():port()))
	holds_within(3, function()
		local worst = sleeper(0.01, 30)  -- waits first
		local stop, sent = false, 0
		sock.runafter(0.3, function() stop = true end)
		local sender = T.go(function()
			local buf = sock.buffer(512)
			local t_end = sock.clock() + 2
			-- A datagram to a socket nobody reads is dropped, never waited for:
			-- every send completes at once.
			while not stop and sock.clock() < t_end do
				assert(tx:send(buf, 512, T.deadline()))
				sent = sent + 1
			end
		end)
		local late = worst()
		stop = true
		sender()
		-- (Under Wine a send costs some 0.3 ms: 800-odd in the 0.3 s.)
		assert(sent > (T.windows and 200 or 1000), 'the sender hardly ran: ' .. sent)
		return late < MAX_LATE, ('the sleeper woke %.1f ms late'):format(late * 1000)
	end)
	tx:close()
	rx:close()
end)

T.test('a large sendfile to a fast reader lets a 10 ms sleeper wake on time', function()
	local path = T.tmpname()
	local size = 1024 * 1024 * 1024
	local f = assert(io.open(path, 'wb'))
	assert(f:seek('set', size - 1))  -- sparse: read as zeros, fast
	f:write('\0')
	f:close()
	local out = T.tmpname()
	-- (One attempt: without the budget a reader slower than the disk lets
	-- the sleeper wake on time now and then, so retrying would hide it.)
	local c = drain_peer(out)
	local worst = sleeper(0.01, 1)
	local sent, err = c:sendfile(path, 0, size, T.deadline(20))
	c:close()
	local late = worst()
	os.remove(path)
	T.eq(sent, size, err)
	assert(late < MAX_LATE, ('the sleeper woke %.1f ms late'):format(late * 1000))
	os.remove(out)
end, DRAIN_UNDER_WINE or 30)

T.test('two bulk senders to fast readers share the loop within a factor of 2', function()
	local outs = {T.tmpname(), T.tmpname()}
	holds_within(3, function()
		local conns = {drain_peer(outs[1]), drain_peer(outs[2])}
		local counts = {0, 0}
		local t_end = sock.clock() + 0.6
		local senders = {}
		for i = 1, 2 do
			senders[i] = T.go(function()
				local buf = sock.buffer(65536)
				while sock.clock() < t_end do
					assert(conns[i]:send(buf, 65536, T.deadline()))
					counts[i] = counts[i] + 65536
				end
				conns[i]:close()
			end)
		end
		senders[1]()
		senders[2]()
		local ratio = math.max(counts[1], counts[2]) / math.max(1, math.min(counts[1], counts[2]))
		return ratio <= 2, ('unfair: %d against %d bytes'):format(counts[1], counts[2])
	end)
	for _, o in ipairs(outs) do os.remove(o) end
end, DRAIN_UNDER_WINE or 40)

-- The storm below in its plainest form, one that does not depend on how
-- fast the machine is: the connections are all in the backlog before the
-- accept loop starts, so every accept completes at once, and the loop
-- spends 1 ms of CPU on each connection (what a handshake or a request
-- costs a real server). Only the budget lets the loop turn in between:
-- without it the sleeper waits for the whole backlog, 0.4 s. With it, some
-- 30 ms: the budget reads the clock once every 16 operations, so a slice
-- of a thread that works between them lasts 16 to 32 operations. (The
-- storm case, whose connections come from a real peer, no longer tells the
-- two apart: on a fast machine its backlog runs dry often enough that the
-- accept loop waits, and the loop turns, by itself.)
T.test('an accept loop whose accepts complete at once lets a 10 ms sleeper wake on time', function()
	local N, WORK = 400, 0.001
	holds_within(3, function()
		local l, port = T.listener()
		local clients = {}
		for i = 1, N do  -- (the kernel completes each handshake into the backlog)
			clients[i] = assert(sock.tcp())
			assert(clients[i]:connect('127.0.0.1', port, T.deadline()))
		end
		local worst = sleeper(0.01, 1)
		local accepted = 0
		local server = T.go(function()
			for _ = 1, N do
				local c = assert(l:accept(T.deadline()))
				accepted = accepted + 1
				busy(WORK)
				c:close()
			end
		end)
		server()
		local late = worst()
		for i = 1, N do clients[i]:close() end
		l:close()
		T.eq(accepted, N)
		return late < MAX_LATE, ('the sleeper woke %.1f ms late'):format(late * 1000)
	end)
end)

T.test('under a connection storm timers fire, and threads of closed connections finish', function()
	local loadgen = os.getenv('SOCK_LOADGEN')
	assert(loadgen, 'SOCK_LOADGEN (the path of bench/loadgen, which CTest sets) is not set')
	holds_within(3, function()
		local l, port = T.listener()
		local live, peak, accepted = 0, 0, 0
		-- The README's server: an accept loop, a thread per connection, echo until EOF.
		local server = T.go(function()
			while true do
				local c = l:accept(T.deadline())
				if not c then break end  -- closed: the storm is over
				accepted = accepted + 1
				sock.thread(function()
					live = live + 1
					peak = math.max(peak, live)
					local buf = sock.buffer(64)
					while true do
						local n = c:recv(buf, 64, T.deadline())
						if not n or n == 0 then break end
						if not c:send(buf, n, T.deadline()) then break end
					end
					c:close()
					live = live - 1
				end)
			end
		end)
		local ticks, last, last_cpu, worst_gap = 0, sock.clock(), cpu_time(), 0
		local ticker = sock.runevery(0.01, function()
			local now, cpu = sock.clock(), cpu_time()
			worst_gap = math.max(worst_gap, late_while_running(now - last, now - last, cpu - last_cpu))
			last, last_cpu = now, cpu
			ticks = ticks + 1
		end)
		local out = T.tmpname()
		-- 64 connections at a time, each: connect, a 16-byte exchange, close.
		assert(os.execute(('%s connrate -p %d -c 64 -s 16 -d 1 -w 0 -a 0 > %s 2>&1 &')
			:format(child.quote(loadgen), port, child.quote(out))))
		sock.sleep(1.2)
		l:close()
		server()
		ticker:cancel()
		local deadline = T.deadline(5)
		while live > 0 and sock.clock() < deadline do sock.sleep(0.01) end
		local report = read_file(out)
		os.remove(out)
		assert(accepted > 200, 'no storm: ' .. accepted .. ' connections accepted\n' .. report)
		-- loadgen keeps 64 connections open at a time: the threads of closed
		-- ones must finish, not pile up waiting for a turn of the loop (piled
		-- up, they would number in the thousands: 15,000-73,000 connections
		-- come in a second). How many are alive at the peak grows with that
		-- rate and with how late the backend reports the peer's close: on a
		-- fast machine (2026-12-07), 240-257 over epoll and 323-441 over
		-- libkqueue's kqueue, which made a bound of 400 fail now and then.
		assert(peak < 1000, peak .. ' connection threads alive at once')
		T.eq(live, 0)
		return worst_gap < MAX_LATE, ('a 10 ms timer went silent for %.0f ms'):format(worst_gap * 1000)
	end)
end, T.not_on_windows('the storm comes from bench/loadgen, an epoll program (Linux)') or 60)

T.test('an operation that gives way keeps its deadline', function()
	local a, b = T.tcp_pair()
	local done, watchdog = false, sock.sleep_job()
	sock.thread(function()  -- a lost deadline fails in 2 s, not at CTest's timeout
		watchdog:sleep(2)
		if not done then a:close() end
	end)
	-- Operations that complete at once on every backend: one-byte recvs from
	-- a queue that holds more (a send from a sock thread may go through
	-- io_uring's ring and wait for its completion, which starts a slice).
	local one = sock.buffer(1)
	local function quick(n)
		for _ = 1, n do T.eq(a:recv(one, 1, T.deadline()), 1) end
	end
	-- From a fresh slice (the loop resumes the thread after sleep(0)), 16
	-- operations read the budget's clock, a busy spell outlasts its 2 ms
	-- slice, and the 16th operation after that reads the clock again and
	-- gives way for a turn: the recv.
	local function exhaust_budget()
		sock.sleep(0)
		quick(16)
		busy(0.005)
		quick(15)
	end
	-- 63 bytes: 31 quick recvs and the one that gives way, then 31 more.
	assert(b:send(('y'):rep(63), nil, T.deadline()))
	-- First with a byte to read, which a recv that did not give way would
	-- return at once: a timer due now fires first only if it did.
	exhaust_budget()
	local turned = false
	sock.runafter(0, function() turned = true end)
	T.eq(a:recv(one, 1, T.deadline()), 1)
	assert(turned, 'the recv did not give way: this test does not reach its case')
	-- Then with nothing to read: the deferred recv starts, and must keep
	-- its deadline.
	exhaust_budget()
	local t0 = sock.clock()
	local n, err = a:recv(one, 1, t0 + 0.05)
	T.eq(n, nil)
	T.eq(err, 'timeout')
	assert(sock.clock() - t0 < 1.5, 'the deadline fired late')
	done = true
	watchdog:wakeup()
	b:close()
	a:close()
end)

T.test('sock.sleep(0) gives way to the loop once', function()
	local other_ran = false
	sock.thread(function()
		sock.sleep(0)
		other_ran = true
	end)
	-- A long computation that gives way: the other thread gets its turn.
	local t_end = sock.clock() + 1
	while not other_ran and sock.clock() < t_end do
		for _ = 1, 1000 do end
		sock.sleep(0)
	end
	assert(other_ran, 'the other thread never ran')
end)

T.done()
