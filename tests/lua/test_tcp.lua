-- TCP sockets: the seed-000 semantics of connect, listen, accept, send,
-- recv, recvn, recvall, recvall_read, shutdown and close.
local T = require'testlib'
local sock = T.sock

T.test('echo round trip with accept fields', function()
	local l, port = T.listener()
	local seen
	sock.thread(function()
		local c = assert(l:accept(T.deadline()))
		seen = {c.remote_addr, c.remote_port, c.local_addr, c.local_port}
		local buf = sock.buffer(64)
		local n = assert(c:recv(buf, 64, T.deadline()))
		assert(c:send(buf, n, T.deadline()))
		c:close()
	end)
	local c = assert(sock.tcp())
	assert(c:connect('127.0.0.1', port, T.deadline()))
	T.eq(c:send('ping!', nil, T.deadline()), true)
	local buf = sock.buffer(5)
	local b, n = c:recvn(buf, 5, T.deadline())
	T.eq(b, buf)
	T.eq(n, 5)
	T.eq(buf:tostring(), 'ping!')
	T.eq(seen[1], '127.0.0.1')
	T.eq(type(seen[2]), 'number')
	T.eq(seen[3], '127.0.0.1')
	T.eq(seen[4], port)
	T.eq(seen[2], c:getsockname():port())
	c:close()
	l:close()
end)

T.test('connections that queue up before accept are all accepted, each with its own peer', function()
	local l, port = T.listener()
	local clients, ports = {}, {}
	for i = 1, 20 do
		clients[i] = assert(sock.tcp())
		assert(clients[i]:connect('127.0.0.1', port, T.deadline()))
		ports[clients[i]:getsockname():port()] = i
	end
	local seen = {}
	for _ = 1, 20 do
		local c = assert(l:accept(T.deadline()))
		T.eq(c.remote_addr, '127.0.0.1')
		local i = ports[c.remote_port]
		assert(i, 'accepted a connection from an unknown port')
		assert(not seen[i], 'accepted the same client twice')
		seen[i] = true
		-- and the fd is that client's peer
		assert(clients[i]:send('#' .. i, nil, T.deadline()))
		T.eq(c:readn(#('#' .. i), T.deadline()), '#' .. i)
		c:close()
	end
	-- nothing more to accept
	local c, err = l:accept(sock.clock() + 0.05)
	T.eq(c, nil)
	T.eq(err, 'timeout')
	for _, c in ipairs(clients) do c:close() end
	l:close()
end)

T.test('closing a listener ends the connections nobody accepted, and frees its port', function()
	local l, port = T.listener()
	local c1 = assert(sock.tcp())
	assert(c1:connect('127.0.0.1', port, T.deadline()))
	local a1 = assert(l:accept(T.deadline()))
	local c2 = assert(sock.tcp())
	assert(c2:connect('127.0.0.1', port, T.deadline()))
	-- an accept waits while the listener closes under it
	local got
	sock.thread(function()
		local s, err = l:accept(T.deadline())
		if s then s:close() end
		got = err or 'accepted'
	end)
	l:close()
	local buf = sock.buffer(8)
	local n, err = c2:recv(buf, 8, T.deadline())
	assert(n == 0 or err == 'connection_reset', tostring(n) .. ' ' .. tostring(err))
	assert(got == 'closed' or got == 'accepted', tostring(got))
	-- the accepted one is unaffected
	assert(c1:send('ok', nil, T.deadline()))
	T.eq(a1:readn(2, T.deadline()), 'ok')
	-- and the port can be listened on again at once (reuseaddr: a1 still
	-- holds the port; only a listener would make the bind fail)
	local l2 = assert(sock.tcp())
	assert(l2:setopt('reuseaddr', true))
	assert(l2:listen('127.0.0.1', port))
	for _, s in ipairs{c1, c2, a1, l2} do s:close() end
end)

T.test('type, family, protocol', function()
	local s = assert(sock.tcp())
	T.eq(s:type(), 'tcp')
	T.eq(s:family(), 'inet')
	T.eq(s:protocol(), 'tcp')
	s:close()
	local s6 = assert(sock.tcp('inet6'))
	T.eq(s6:family(), 'inet6')
	s6:close()
end)

T.test('connection refused is normalized, through the poller too', function()
	local l, port = T.listener()
	l:close()  -- nothing listens there now
	local c = assert(sock.tcp())
	local ok, err = c:connect('127.0.0.1', port, T.deadline())
	T.eq(ok, nil)
	T.eq(err, 'connection_refused')
	c:close()
end)

T.test('address already in use', function()
	local a, port = T.listener()
	local b = assert(sock.tcp())
	local ok, err = b:listen('127.0.0.1', port)
	T.eq(ok, nil)
	T.eq(err, 'address_already_in_use')
	a:close()
	b:close()
end)

T.test('listen takes an explicit backlog', function()
	local s = assert(sock.tcp())
	assert(s:listen(16, '127.0.0.1', 0))
	assert(s:getsockname():port() > 0)
	s:close()
end)

T.test('recv times out and the socket stays usable', function()
	local c, s = T.tcp_pair()
	local buf = sock.buffer(16)
	local t0 = sock.clock()
	local n, err = s:recv(buf, 16, sock.clock() + 0.05)
	T.eq(n, nil)
	T.eq(err, 'timeout')
	assert(sock.clock() - t0 >= 0.04, 'returned before the deadline')
	assert(c:send('after'))
	T.eq(s:recv(buf, 16, T.deadline()), 5)
	T.eq(buf:tostring(1, 5), 'after')
	c:close()
	s:close()
end)

T.test('a deadline already past times out at once', function()
	local c, s = T.tcp_pair()
	local buf = sock.buffer(16)
	local t0 = sock.clock()
	local n, err = s:recv(buf, 16, sock.clock() - 10)
	T.eq(err, 'timeout')
	assert(sock.clock() - t0 < 0.5)
	local a, aerr = s:accept(0)  -- not a listener: fails, but must not hang
	T.eq(a, nil)
	assert(aerr)
	c:close()
	s:close()
end)

T.test('a recv past its deadline still tries once: data sent meanwhile comes', function()
	local c, s = T.tcp_pair()
	assert(c:setopt('tcp_nodelay', true))  -- (Nagle would hold 'b' back until 'a' is acknowledged)
	local buf = sock.buffer(16)
	assert(c:send('a', nil, T.deadline()))
	T.eq(s:recv(buf, 16, T.deadline()), 1)  -- short: a recv now would surely find nothing...
	assert(c:send('b', nil, T.deadline()))  -- ...but this came, sent at once, no loop turn since
	T.eq(s:recv(buf, 16, sock.clock() - 10), 1)
	T.eq(buf:tostring(1, 1), 'b')
	c:close()
	s:close()
end)

-- (io_uring hands a small send to the kernel untried, with the turn's one
-- submission: not one whose deadline has passed, which could then not start)
T.test('a send past its deadline still tries once: with room, it is sent', function()
	local c, s = T.tcp_pair()
	local buf = sock.buffer(16)
	T.eq(c:send('late', nil, sock.clock() - 10), true)
	assert(s:recvn(buf, 4, T.deadline()))
	T.eq(buf:tostring(1, 4), 'late')
	c:close()
	s:close()
end)

T.test('recv returns 0 at end of stream; recvn reports eof with the partial length', function()
	local c, s = T.tcp_pair()
	assert(c:send('abc'))
	c:close()
	local buf = sock.buffer(10)
	local n, err, got = s:recvn(buf, 10, T.deadline())
	T.eq(n, nil)
	T.eq(err, 'eof')
	T.eq(got, 3)
	T.eq(buf:tostring(1, 3), 'abc')
	T.eq(s:recv(buf, 10, T.deadline()), 0)
	s:close()
end)

T.test('send of zero bytes is a no-op that returns true', function()
	local c, s = T.tcp_pair()
	T.eq(c:send(''), true)
	T.eq(c:send('abc', 0), true)
	c:close()
	s:close()
end)

T.test('a large send completes in full while the peer reads slowly', function()
	local c, s = T.tcp_pair()
	local parts = {}
	for i = 1, 4096 do parts[i] = string.format('%07d|', i) end
	local payload = table.concat(parts):rep(8)  -- 256 KiB
	local received
	sock.thread(function()
		local buf = sock.buffer(#payload)
		local b, n = assert(s:recvn(buf, #payload, T.deadline(10)))
		received = buf:tostring(1, n)
	end)
	T.eq(c:send(payload, nil, T.deadline(10)), true)
	while not received do sock.sleep(0.001) end
	T.eq(#received, #payload)
	assert(received == payload, 'payload corrupted')
	c:close()
	s:close()
end)

T.test('recvall collects until the peer closes', function()
	local c, s = T.tcp_pair()
	sock.thread(function()
		for i = 1, 10 do assert(c:send(('%02d'):format(i))) end
		c:close()
	end)
	local buf, len = s:recvall(T.deadline())
	assert(buf, len)
	T.eq(len, 20)
	local text = (type(buf) == 'cdata') and require'ffi'.string(buf, len) or buf:tostring(1, len)
	T.eq(text, '01020304050607080910')
	s:close()
end)

T.test('recvall_read gives a non-yielding reader', function()
	local c, s = T.tcp_pair()
	sock.thread(function() assert(c:send('hello world')); c:close() end)
	local read = assert(s:recvall_read(T.deadline()))
	T.eq(read(5), 'hello')
	local buf = sock.buffer(3)
	T.eq(read(buf, 3), 3)
	T.eq(buf:tostring(), ' wo')
	T.eq(read(), 'rld')
	T.eq(read(), nil)
	s:close()
end)

T.test('shutdown w sends FIN: the peer reads 0, and can still send back', function()
	local c, s = T.tcp_pair()
	assert(c:shutdown('w'))
	local buf = sock.buffer(8)
	T.eq(s:recv(buf, 8, T.deadline()), 0)
	assert(s:send('late'))
	T.eq(c:recv(buf, 8, T.deadline()), 4)
	T.raises("bad argument #2 to 'shutdown'", c.shutdown, c, 'x')
	c:close()
	s:close()
end)

T.test('close wakes a thread waiting on the socket with closed', function()
	local c, s = T.tcp_pair()
	local result
	sock.thread(function()
		local buf = sock.buffer(8)
		result = {s:recv(buf, 8, T.deadline())}
	end)
	assert(result == nil, 'recv should be waiting')
	s:close()
	while not result do sock.sleep(0.001) end
	T.eq(result[1], nil)
	T.eq(result[2], 'closed')
	c:close()
end)

T.test('I/O on a closed socket returns closed; close twice is harmless', function()
	local s = assert(sock.tcp())
	assert(s:close())
	assert(s:close())
	T.eq(s:closed(), true)
	local buf = sock.buffer(4)
	local n, err = s:recv(buf, 4)
	T.eq(err, 'closed')
	local ok, err2, sent = s:send('x')
	T.eq(err2, 'closed')
	T.eq(sent, 0)
	local ok3, err3 = s:connect('127.0.0.1', 1)
	T.eq(err3, 'closed')
end)

-- c's recv after the reset came: on Linux the socket keeps the error for the
-- next call. Under Wine a reset that no waiting call receives reads as the
-- end of the stream (T.wine in testlib), so there c's recv waits first.
local function recv_after_reset(c, reset)
	if not T.wine then
		reset()
		return c:recv(sock.buffer(8), 8, T.deadline())
	end
	local n, err
	local done = T.go(function() n, err = c:recv(sock.buffer(8), 8, T.deadline()) end)
	reset()
	done()
	return n, err
end

T.test('close sends RST when unread data is pending', function()
	local c, s = T.tcp_pair()
	assert(c:send('unread'))
	-- make sure the data has arrived at s before closing it
	local buf = sock.buffer(1)
	T.eq(s:recv(buf, 1, T.deadline(), 2 --[[MSG_PEEK]]), 1)
	local n, err = recv_after_reset(c, function() s:close() end)
	T.eq(err, 'connection_reset')
	c:close()
end)

T.test('close sends FIN when everything was read', function()
	local c, s = T.tcp_pair()
	s:close()
	T.eq(c:recv(sock.buffer(8), 8, T.deadline()), 0)
	c:close()
end)

T.test('so_linger 0 makes close send RST', function()
	local c, s = T.tcp_pair()
	assert(s:setopt('linger', 0))
	local n, err = recv_after_reset(c, function() s:close() end)
	T.eq(err, 'connection_reset')
	c:close()
end)

T.test('full duplex: one thread reads while another writes', function()
	local c, s = T.tcp_pair()
	local got = {}
	local reader_done = false
	sock.thread(function()
		local buf = sock.buffer(4)
		for i = 1, 3 do
			local b, n = assert(s:recvn(buf, 4, T.deadline()))
			got[i] = buf:tostring()
		end
		reader_done = true
	end)
	sock.thread(function()
		for i = 1, 3 do assert(s:send('srv' .. i)) end
	end)
	for i = 1, 3 do assert(c:send('cli' .. i)) end
	local buf = sock.buffer(4)
	for i = 1, 3 do
		assert(c:recvn(buf, 4, T.deadline()))
		T.eq(buf:tostring(), 'srv' .. i)
	end
	while not reader_done do sock.sleep(0.001) end
	T.eq(table.concat(got, ','), 'cli1,cli2,cli3')
	c:close()
	s:close()
end)

T.test('a second reader on the same socket gets busy', function()
	local c, s = T.tcp_pair()
	sock.thread(function() s:recv(sock.buffer(4), 4, T.deadline()) end)
	local n, err = s:recv(sock.buffer(4), 4, T.deadline())
	T.eq(err, 'busy')
	c:close()
	s:close()
end)

T.test('IPv6 loopback', function()
	local l = assert(sock.tcp('inet6'))
	assert(l:listen('::1', 0))
	local port = l:getsockname():port()
	local c = assert(sock.tcp('inet6'))
	assert(c:connect('::1', port, T.deadline()))
	local a = assert(l:accept(T.deadline()))
	T.eq(a.remote_addr, '::1')
	T.eq(a.local_port, port)
	assert(c:send('v6'))
	local buf = sock.buffer(2)
	assert(a:recvn(buf, 2, T.deadline()))
	T.eq(buf:tostring(), 'v6')
	a:close(); c:close(); l:close()
end)

T.test('an ai can stand in for host, port', function()
	local l, port = T.listener()
	local ai = assert(sock.addr('127.0.0.1', port, 'tcp', 'inet'))
	local c = assert(sock.tcp())
	assert(c:connect(ai, nil, T.deadline()))
	local a = assert(l:accept(T.deadline()))
	a:close(); c:close(); l:close()
end)

T.test('sockets take fields', function()
	local s = assert(sock.tcp())
	s.name = 'mine'
	T.eq(s.name, 'mine')
	T.eq(s.nonexistent, nil)
	s:close()
end)

T.test('bad arguments raise naming the function and argument', function()
	local s = assert(sock.tcp())
	T.raises("bad argument #2 to 'recv'", s.recv, s, 'not a buffer', 4)
	T.raises("bad argument #3 to 'recv'", s.recv, s, sock.buffer(4), 8)
	T.raises("bad argument #4 to 'recv'", s.recv, s, sock.buffer(4), 4, 'soon')
	T.raises("bad argument #2 to 'send'", s.send, s, {})
	T.raises("bad argument #3 to 'send'", s.send, s, 'abc', 10)
	T.raises("bad argument #1 to 'recv'", s.recv, 42, sock.buffer(4))
	T.raises("unknown family", sock.tcp, 'martian')
	s:close()
end)

T.plain('I/O outside a sock thread raises', function()
	local s = assert(sock.tcp())
	T.raises('only inside a sock thread', s.recv, s, sock.buffer(4), 4)
	T.raises('only inside a sock thread', s.connect, s, '127.0.0.1', 1)
	T.raises('only inside a sock thread', s.accept, s)
	s:close()
end)

T.plain('collected sockets close their fd', function()
	local before = T.fd_count()
	for i = 1, 50 do local s = sock.tcp() end
	collectgarbage(); collectgarbage()
	T.eq(T.fd_count(), before)
end, T.needs_fd_count())

if jit then
	T.test('LuaJIT: ffi buffers work for recv, recvn and send', function()
		local ffi = require'ffi'
		local c, s = T.tcp_pair()
		local out = ffi.new('uint8_t[?]', 6)
		ffi.copy(out, 'cdata!', 6)
		assert(c:send(out, 6, T.deadline()))
		local arr = ffi.new('uint8_t[?]', 6)
		local b, n = assert(s:recvn(arr, 6, T.deadline()))
		T.eq(ffi.string(arr, n), 'cdata!')
		local ptr = ffi.cast('uint8_t*', arr)
		assert(c:send('xy'))
		T.eq(s:recv(ptr, 2, T.deadline()), 2)
		T.eq(ffi.string(ptr, 2), 'xy')
		T.raises('length required', s.recv, s, ptr)
		c:close()
		s:close()
	end)
end

T.test('a failed connect on an accepted socket leaves its remote address as it was', function()
	local c, s = T.tcp_pair()
	local other, other_port = T.listener()
	local ok, err = s:connect('127.0.0.1', other_port, T.deadline())
	T.eq(ok, nil)
	T.eq(err, 'already_connected')
	-- (io_uring kept the address to connect to where the accepted socket
	-- keeps its peer's until Lua first reads it)
	T.eq(s.remote_addr, '127.0.0.1')
	T.eq(s.remote_port, c:getsockname():port())
	other:close()
	c:close()
	s:close()
end)

-- On epoll a recv whose queue was found empty waits without trying (the next
-- arrival raises an edge). An end of stream queued behind a short read
-- raises none: the recv after it must still see it.
T.test('a short recv, then the end of stream that arrived with the data', function()
	local c, s = T.tcp_pair()
	local buf = sock.buffer(16)
	local first = T.go(function() return s:recv(buf, 1, T.deadline()) end)  -- waits: nothing sent yet
	assert(c:send('abc'))
	assert(c:shutdown('w'))
	T.eq(first(), 1)  -- the loop saw the data and the end together
	T.eq(s:recv(buf, 16, T.deadline()), 2)  -- short: the queue ran dry (but for the FIN)
	T.eq(s:recv(buf, 16, T.deadline()), 0)
	T.eq(s:recv(buf, 16, T.deadline()), 0)
	c:close()
	s:close()
end)

T.test('a short recv, then data that comes later: the wait without a try is woken', function()
	local c, s = T.tcp_pair()
	local buf = sock.buffer(16)
	assert(c:send('abc'))
	T.eq(s:recv(buf, 16, T.deadline()), 3)  -- short
	local later = T.go(function() return s:recv(buf, 16, T.deadline()) end)
	assert(c:send('defg'))
	T.eq(later(), 4)
	T.eq(buf:tostring(1, 4), 'defg')
	c:close()
	s:close()
end)

T.done()
