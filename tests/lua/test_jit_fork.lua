-- fork() in a program that has already used sock: the child gets a loop and a
-- resolver of its own, the parent's poller (epoll instance or ring, which the
-- child shares) is left alone, and a child forked while threads wait is told
-- so instead of corrupting the parent's loop. LuaJIT only: its FFI calls fork.
local T = require'testlib'
if T.windows then T.skip_file('fork() is POSIX: Windows has no fork') end
local sock = T.sock
local ffi = require'ffi'

ffi.cdef[[
int fork(void);
int waitpid(int pid, int *status, int options);
void _exit(int status);
int pause(void);
int kill(int pid, int sig);
]]
local SIGKILL = 9
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

T.plain('a socket closed in the parent while a child still holds it is not reported to the parent', function()
	-- An epoll registration belongs to the open file description, which the
	-- child keeps open: closing the fd in the parent does not end it.
	local pid
	local ok, err = pcall(sock.run, function()
		local a, b = T.tcp_pair()
		T.eq(select(2, a:recv(sock.buffer(4), 4, sock.clock() + 0.01)), 'timeout')  -- a is registered now
		pid = fork(function()
			ffi.C.pause()  -- hold a's file until killed
			return true
		end)
		local a_fd = a:fileno()
		a:close()
		if sock.backend() == 'epoll' then
			-- The registration is gone from our epoll instance, not just the fd.
			local f = assert(io.open('/proc/self/fdinfo/' .. sock.epoll_fd()))
			local info = f:read('*a')
			f:close()
			assert(not info:find('tfd:%s+' .. a_fd .. '%s'), 'fd ' .. a_fd .. ' still registered:\n' .. info)
		end
		a = nil
		collectgarbage()
		collectgarbage()  -- a's memory, which the registration pointed to, is gone
		assert(b:send('x', nil, T.deadline()))  -- a's file becomes readable in the child's hands
		-- The loop polls and must not touch the freed socket.
		local c, d = T.tcp_pair()
		assert(c:send('y', nil, T.deadline()))
		T.eq(d:readn(1, T.deadline()), 'y')
		b:close()
		c:close()
		d:close()
	end)
	if pid then  -- whatever happened, the child goes
		ffi.C.kill(pid, SIGKILL)
		sock.run(function() T.eq(child_status(pid), -1) end)
	end
	assert(ok, err)
end)

T.plain('a lookup in a child works after one in the parent timed out', function()
	local prev = sock._resolver_delay(0.3)
	sock.run(function()
		local c = assert(sock.tcp())
		local ok, err = c:connect('localhost', 1, sock.clock() + 0.02)
		T.eq(ok, nil)
		T.eq(err, 'timeout')  -- the lookup is still on a worker; the parent's resolver op stays armed
		c:close()
	end)
	local pid = fork(function()
		sock._resolver_delay(0)
		local ai
		sock.thread(function() ai = sock.addr('localhost', 80) end)
		sock.start(5)  -- bounded: a hang shows as no address
		return ai ~= nil
	end)
	sock.run(function() T.eq(child_status(pid), 0) end)
	sock._resolver_delay(prev)
end)

T.done()
