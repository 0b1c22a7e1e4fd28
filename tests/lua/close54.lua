-- Lua 5.4 only (test_pcall.lua loads it there): sockets work with <close>.
local T = ...
local sock = T.sock

T.test('<close> closes a socket at the end of its scope', function()
	local outer
	do
		local s <close> = assert(sock.tcp())
		outer = s
		T.eq(s:closed(), false)
	end
	T.eq(outer:closed(), true)
	outer:close()  -- closing again is harmless
end)

T.test('<close> closes when the scope ends by an error, after a wait', function()
	local kept
	local ok, err = sock.pcall(function()
		local pa, pb = assert(sock.socketpair())
		local a <close> = pa
		local b <close> = pb
		kept = {a, b}
		assert(a:send('x'))
		T.eq(b:readn(1, T.deadline()), 'x')
		error('leaving', 0)
	end)
	T.eq(ok, false)
	T.eq(err, 'leaving')
	T.eq(kept[1]:closed(), true)
	T.eq(kept[2]:closed(), true)
end)

T.test('<close> on a socket another thread waits on wakes it with closed', function()
	local result
	local job = sock.sleep_job()
	do
		local pa, pb = assert(sock.socketpair())
		local a <close> = pa
		local b <close> = pb
		sock.thread(function()
			result = {b:readline(T.deadline())}
			job:wakeup()
		end)
	end
	if not result then job:sleep(5) end
	T.eq(result[1], nil)
	T.eq(result[2], 'closed')
end)

T.test('<close> with helpers and buffered reads', function()
	local l <close> = assert(sock.listen_tcp('127.0.0.1', 0))
	local c <close> = assert(sock.connect_tcp('127.0.0.1', l:getsockname():port(), {expires = T.deadline()}))
	local a <close> = assert(l:accept(T.deadline()))
	assert(c:send('closing\n'))
	T.eq(a:readline(T.deadline()), 'closing')
end)
