-- fork() in a program that has already used sock: the child gets a loop and a
-- resolver of its own, the parent's poller (epoll instance or ring, which the
-- child shares) is left alone, and a child forked while threads wait is told
-- so instead of corrupting the parent's loop. LuaJIT only: its FFI calls fork.
local T = require'testlib'
local sock = T.sock
local ffi = require'ffi'

ffi.cdef[[
int fork(void);
int waitpid(int pid, int *status, int options);
void _exit(int status);
]]
local WNOHANG = 1

-- Fork; in the child run f() and leave with _exit(0) if it returns true,
-- _exit(1) if it returns false or raises (never returning into the tests).
local function fork(f)
	local pid = ffi.C.fork()
	assert(pid >= 0, 'fork failed')
	if pid == 0 then
		local ok, res = pcall(f)
		if not ok then io.stderr:write('child: ', tostring(res), '\n') end
		io.stderr:flush()
		ffi.C._exit(ok and res == true and 0 or 1)
	end
	return pid
end

-- The child's exit status, waiting (without blocking the loop) up to 10 s.
local function child_status(pid)
	local status = ffi.new('int[1]')
	local deadline = sock.clock() + 10
	while sock.clock() < deadline do
		local r = ffi.C.waitpid(pid, status, WNOHANG)
		if r == pid then
			local st = status[0]
			return bit.band(st, 0x7f) == 0 and bit.rshift(bit.band(st, 0xff00), 8) or -1
		end
		sock.sleep(0.01)
	end
	error('child ' .. pid .. ' did not exit in 10 s')
end

-- An echo over loopback and a host-name lookup, each with a deadline: what
-- a process checks to know its loop and resolver work.
local function echo_and_lookup()
	local l = assert(sock.tcp())
	assert(l:listen('127.0.0.1', 0))
	local port = l:getsockname():port()
	sock.thread(function()
		local s = assert(l:accept(T.deadline()))
		local buf = sock.buffer(16)
		local n = assert(s:recv(buf, 16, T.deadline()))
		assert(s:send(buf, n, T.deadline()))
		s:close()
	end)
	local c = assert(sock.tcp())
	assert(c:connect('127.0.0.1', port, T.deadline()))
	assert(c:send('ping', nil, T.deadline()))
	local buf = sock.buffer(4)
	assert(c:recvn(buf, 4, T.deadline()))
	assert(buf:tostring() == 'ping', 'echo')
	c:close()
	l:close()
	local ai = assert(sock.addr('localhost', 80))  -- on the resolver's threads
	ai:free()
	return true
end

T.plain('a child forked after sock was used runs its own loop; the parent\'s goes on', function()
	-- The parent has a loop (and, on io_uring, a ring) and resolver threads.
	sock.run(echo_and_lookup)
	-- A listener made before the fork, served by the child: the pre-fork server.
	local l = assert(sock.tcp())
	assert(l:listen('127.0.0.1', 0))
	local port = l:getsockname():port()
	local pid = fork(function()
		local served = false
		sock.run(function()
			assert(echo_and_lookup())
			local s = assert(l:accept(T.deadline()))
			assert(s:send('from child', nil, T.deadline()))
			s:close()
			served = true
		end)
		l:close()
		return served
	end)
	l:close()  -- the parent's copy; the child still listens
	local got
	sock.run(function()
		local c = assert(sock.tcp())
		assert(c:connect('127.0.0.1', port, T.deadline()))
		got = c:readn(10, T.deadline())
		c:close()
		-- the parent's own loop and resolver are untouched by the child
		assert(echo_and_lookup())
		T.eq(child_status(pid), 0)
	end)
	T.eq(got, 'from child')
end)

T.plain('a child forked while threads wait is told to fork earlier', function()
	local sj = sock.sleep_job()
	local pid
	sock.run(function()
		sock.thread(function() sj:sleep(30) end)  -- waiting in the parent's loop
		pid = fork(function()
			local ok, err = pcall(sock.sleep, 0.01)
			return not ok and tostring(err):find('forked while sock threads were waiting', 1, true) ~= nil
		end)
		T.eq(child_status(pid), 0)
		sj:wakeup()
	end)
end)

T.done()
