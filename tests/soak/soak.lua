-- Soak: churn many short connections through an echo server in this one
-- process, then show that the fd count and the memory are where they were.
--
--   lua soak.lua [connections (200000)] [seconds (120)] [concurrency (64)]
--
-- Each connection makes one exchange: the client connects from one of the
-- loopback addresses 127.0.0.2 .. 127.0.0.9 (bind before connect, the port
-- picked at connect time with ip_bind_address_no_port), sends a message and
-- reads the echo; the server closes first; the client reads the end of the
-- stream and closes with so_linger 0. So no TIME_WAIT is left on either
-- side, and the machine's ephemeral ports (about 28k per address pair) are
-- never the limit, however fast the connections come.
--
-- Two halves of connections/2, with every connection closed at each
-- checkpoint. Figures at the start, after the first half and at the end:
-- open fds, VmRSS, the Lua heap after a full collection. Fails when
--  - any exchange fails, or the run does not finish in time;
--  - the fd count at a checkpoint differs from the start;
--  - VmRSS grows by more than RSS_GROWTH_KB over the second half: by then the
--    process has had its peak of 'concurrency' connections at once many
--    times over, so a steady state has no reason to grow; a leak of 40 bytes
--    per connection would already add 4 MB over 100k connections;
--  - the Lua heap after a full collection grows by more than 256 KB.
local sock = require'sock'

local TOTAL = tonumber(arg[1]) or 200000
local SECONDS = tonumber(arg[2]) or 120
local CONCURRENCY = tonumber(arg[3]) or 64
local RSS_GROWTH_KB = 4096
local HEAP_GROWTH_KB = 256

local pid
do
	local f = assert(io.open('/proc/self/stat'))
	pid = f:read('*l'):match('^(%d+)')
	f:close()
end

-- Open fds other than pipes (the listing's own popen pipe comes and goes).
local function fd_count()
	local p = assert(io.popen('for f in /proc/' .. pid .. '/fd/*; do readlink "$f"; done'))
	local n = 0
	for line in p:lines() do
		if not line:find('^pipe:') then n = n + 1 end
	end
	p:close()
	return n
end

local function rss_kb()
	local f = assert(io.open('/proc/' .. pid .. '/status'))
	local kb = tonumber(f:read('*a'):match('VmRSS:%s*(%d+)'))
	f:close()
	return kb
end

local function snapshot(label, done)
	collectgarbage()
	collectgarbage()
	local s = {label = label, done = done, fds = fd_count(), rss = rss_kb(), heap = collectgarbage('count')}
	print(('%-8s %7d connections  fds %3d  VmRSS %7d KB  Lua heap %7.0f KB')
		:format(label, done, s.fds, s.rss, s.heap))
	return s
end

local backend, why = sock.backend()
local required = os.getenv('SOCK_REQUIRE_BACKEND')
if required and backend ~= required then
	error(('backend %s was required but %s runs (%s)'):format(required, backend, tostring(why)), 0)
end
print(('soak: %d connections, %d at a time, at most %ds, backend %s'):format(TOTAL, CONCURRENCY, SECONDS, backend))

local listener = assert(sock.tcp())
assert(listener:setopt('reuseaddr', true))
assert(listener:listen('127.0.0.1', 0))
local port = listener:getsockname():port()
local MESSAGE = 'soak test message, echoed'

local t_start = sock.clock()
local t_end = t_start + SECONDS
local failures, first_failure = 0, nil
local function failed(what, err)
	failures = failures + 1
	first_failure = first_failure or (what .. ': ' .. tostring(err))
end

-- The server: one thread per connection.
local served = 0
local function serve(s)
	local buf = sock.buffer(64)
	local n, err = s:recv(buf, 64, sock.clock() + 10)
	if not n or n == 0 then
		failed('server recv', err or 'eof')
	else
		local ok, serr = s:send(buf, n, sock.clock() + 10)
		if not ok then failed('server send', serr) end
	end
	s:close()
	served = served + 1
end

local accepting = true
sock.thread(function()
	while accepting do
		local s, err = listener:accept()
		if s then
			sock.thread(serve, s)
		elseif err ~= 'closed' then
			failed('accept', err)
		end
	end
end)

-- One exchange as a client, from source address 127.0.0.(2 + i % 8).
local no_port = true
local function exchange(i)
	local c, err = sock.tcp()
	if not c then return failed('socket', err) end
	if no_port then no_port = c:setopt('ip_bind_address_no_port', true) and true or false end
	local ok
	ok, err = c:bind('127.0.0.' .. (2 + i % 8), 0)
	if not ok then c:close() return failed('bind', err) end
	local deadline = sock.clock() + 10
	ok, err = c:connect('127.0.0.1', port, deadline)
	if not ok then c:close() return failed('connect', err) end
	ok, err = c:send(MESSAGE, nil, deadline)
	if not ok then c:close() return failed('send', err) end
	local buf = sock.buffer(64)
	local _, n
	_, n, err = c:recvn(buf, #MESSAGE, deadline)
	if not _ then c:close() return failed('recvn', n) end
	if buf:tostring(1, #MESSAGE) ~= MESSAGE then c:close() return failed('echo', 'wrong bytes') end
	n, err = c:recv(buf, 64, deadline) -- the server closes first
	if n ~= 0 then c:close() return failed('eof', err or n) end
	c:setopt('linger', 0)
	c:close()
end

-- Run connections first..last with CONCURRENCY client threads; returns how
-- many were made.
local function churn(first, last)
	local next_id = first
	local running = 0
	local all_done = sock.sleep_job()
	for _ = 1, CONCURRENCY do
		running = running + 1
		sock.thread(function()
			while next_id <= last and sock.clock() < t_end do
				local i = next_id
				next_id = next_id + 1
				exchange(i)
			end
			running = running - 1
			if running == 0 then all_done:wakeup() end
		end)
	end
	-- (The acceptor waits for ever: stop the loop once the clients are done.)
	sock.run(function()
		if running > 0 then all_done:sleep(SECONDS + 10) end
		sock.stop()
	end)
	return next_id - first
end

local start = snapshot('start', 0)
local half = math.floor(TOTAL / 2)
local made1 = churn(1, half)
local mid = snapshot('middle', made1)
local made2 = churn(half + 1, TOTAL)
-- Every server thread has finished once every client saw the end of stream.
local made = made1 + made2
local elapsed = sock.clock() - t_start
local finish = snapshot('end', made)

accepting = false
listener:close() -- wakes the acceptor with 'closed'
sock.start(5)
assert(sock._waiting_count() == 0, 'threads still waiting at the end')

print(('%d connections in %.1fs (%.0f/s), %d served, %d failed; ip_bind_address_no_port %s')
	:format(made, elapsed, made / elapsed, served, failures, no_port and 'on' or 'not supported'))
print(('fds: start %d, middle %d, end %d'):format(start.fds, mid.fds, finish.fds))
print(('VmRSS: start %d KB, middle %d KB (+%d), end %d KB (+%d over the second half)')
	:format(start.rss, mid.rss, mid.rss - start.rss, finish.rss, finish.rss - mid.rss))
print(('Lua heap after a full collection: start %.0f KB, middle %.0f KB, end %.0f KB')
	:format(start.heap, mid.heap, finish.heap))

local problems = {}
if failures > 0 then problems[#problems + 1] = failures .. ' exchanges failed, the first: ' .. first_failure end
if made < TOTAL then problems[#problems + 1] = ('only %d of %d connections in %ds'):format(made, TOTAL, SECONDS) end
if served ~= made then problems[#problems + 1] = ('%d connections made but %d served'):format(made, served) end
if mid.fds ~= start.fds or finish.fds ~= start.fds then problems[#problems + 1] = 'the fd count changed' end
if finish.rss - mid.rss > RSS_GROWTH_KB then
	problems[#problems + 1] = ('VmRSS grew by %d KB over the second half (bound %d KB)'):format(finish.rss - mid.rss, RSS_GROWTH_KB)
end
if finish.heap - start.heap > HEAP_GROWTH_KB then
	problems[#problems + 1] = ('the Lua heap grew by %.0f KB (bound %d KB)'):format(finish.heap - start.heap, HEAP_GROWTH_KB)
end
if #problems > 0 then
	error('soak failed:\n  ' .. table.concat(problems, '\n  '), 0)
end
print('soak passed')
