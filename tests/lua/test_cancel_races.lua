-- Deadlines and closes racing the data. On a completion backend (io_uring)
-- a cancel is asynchronous: the kernel may finish the operation before it
-- sees the cancel, and then the result must be delivered, never dropped.
-- These tests hammer that window; on epoll they hold trivially.
local T = require'testlib'
local sock = T.sock

T.test('a stream read with deadlines that keep expiring loses no byte', function()
	local a, b = sock.socketpair()
	local total = 20000
	sock.thread(function()
		local i = 0
		while i < total do
			local k = math.min(total - i, math.random(1, 50))
			local t = {}
			for j = 1, k do t[j] = string.char((i + j) % 251) end
			assert(b:send(table.concat(t), nil, T.deadline()))
			i = i + k
			if math.random() < 0.3 then sock.sleep(0.0001 * math.random(0, 3)) end
		end
	end)
	local got, timeouts = 0, 0
	local buf = sock.buffer(64)
	while got < total do
		local n, err = a:recv(buf, 64, sock.clock() + 0.0002 * math.random(0, 2))
		if n then
			T.eq(n > 0, true, 'recv returned 0 before the end')
			local s = buf:tostring(1, n)
			for j = 1, n do
				if s:byte(j) ~= (got + j) % 251 then error('wrong byte at ' .. (got + j)) end
			end
			got = got + n
		else
			T.eq(err, 'timeout')
			timeouts = timeouts + 1
		end
	end
	a:close(); b:close()
end)

T.test('recvn cut short by its deadline reports what it read, and the rest follows', function()
	local a, b = sock.socketpair()
	local buf = sock.buffer(100)
	sock.thread(function()
		sock.sleep(0.01)
		assert(b:send('0123456789'))
	end)
	local n, err, partial = a:recvn(buf, 100, sock.clock() + 0.1)
	T.eq(n, nil); T.eq(err, 'timeout'); T.eq(partial, 10)
	T.eq(buf:tostring(1, 10), '0123456789')
	assert(b:send('abc'))
	T.eq(a:recv(buf, 100, T.deadline()), 3)
	T.eq(buf:tostring(1, 3), 'abc')
	a:close(); b:close()
end)

T.test('closing 200 sockets with readers waiting wakes each with closed', function()
	local l, port = T.listener()
	local N = 200
	local clients, servers, errs = {}, {}, {}
	for i = 1, N do
		clients[i] = assert(sock.tcp())
		assert(clients[i]:connect('127.0.0.1', port, T.deadline()))
		servers[i] = assert(l:accept(T.deadline()))
	end
	-- Every waiter reports in; with a completion backend (io_uring, IOCP)
	-- the closed waits finish once the kernel hands back their requests.
	local woken = T.latch(N + 1)
	for i = 1, N do
		sock.thread(function()
			local _, err = servers[i]:recv(sock.buffer(16), 16, T.deadline())
			errs[#errs + 1] = err
			woken.done()
		end)
	end
	local accept_err
	sock.thread(function() accept_err = select(2, l:accept(T.deadline())) woken.done() end)
	for i = 1, N do servers[i]:close() end
	l:close()
	assert(woken.wait(), 'not every waiter woke')
	T.eq(#errs, N)
	for i = 1, N do T.eq(errs[i], 'closed') end
	T.eq(accept_err, 'closed')
	for i = 1, N do clients[i]:close() end
end)

T.test('a socket closed and its fd number reused at once: the new socket keeps its data', function()
	for round = 1, 50 do
		local a, b = sock.socketpair()
		local woke
		sock.thread(function() woke = select(2, a:recv(sock.buffer(16), 16, T.deadline())) end)
		a:close()  -- the recv may not even have reached the kernel yet
		local c, d = sock.socketpair()  -- likely gets a's fd number
		assert(d:send('mine'))
		sock.sleep(0)
		local buf = sock.buffer(16)
		T.eq(c:recv(buf, 16, T.deadline()), 4)
		T.eq(buf:tostring(1, 4), 'mine')
		sock.sleep(0)
		T.eq(woke, 'closed')
		b:close(); c:close(); d:close()
	end
end)

T.done()
