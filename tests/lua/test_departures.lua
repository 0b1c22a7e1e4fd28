-- Where luapower sock's own Linux code departs from its documentation, we
-- follow the document. One test per departure (issue 3).
local T = require'testlib'
local sock = T.sock

T.test('accepted sockets carry remote/local addr and port on Linux', function()
	local l, port = T.listener()
	local c = assert(sock.tcp())
	assert(c:connect('127.0.0.1', port, T.deadline()))
	local a = assert(l:accept(T.deadline()))
	T.eq(a.remote_addr, '127.0.0.1')
	T.eq(a.remote_port, c:getsockname():port())
	T.eq(a.local_addr, '127.0.0.1')
	T.eq(a.local_port, port)
	a:close(); c:close(); l:close()
end)

T.test('errors reported through the poller are normalized names', function()
	local l, port = T.listener()
	l:close()
	local c = assert(sock.tcp())
	local _, err = c:connect('127.0.0.1', port, T.deadline())
	T.eq(err, 'connection_refused')  -- luapower returns strerror text here
	c:close()
end)

T.test('sj:wakeup works, so timers can be cancelled', function()
	local job = sock.sleep_job()
	local got
	sock.thread(function() got = job:sleep(60) end)
	assert(job:wakeup('early'))
	T.eq(got, 'early')
	local ran = false
	local t = sock.runafter(60, function() ran = true end)
	assert(t:cancel())
	T.eq(ran, false)
end)

T.test('a deadline already past does not spin the CPU', function()
	local c, s = T.tcp_pair()
	local cpu0, t0 = os.clock(), sock.clock()
	local _, err = s:recv(sock.buffer(1), 1, sock.clock() - 1)
	T.eq(err, 'timeout')
	assert(sock.clock() - t0 < 0.5)
	assert(os.clock() - cpu0 < 0.2)
	c:close(); s:close()
end)

T.plain('run returns every value, not only the first', function()
	local a, b, c = sock.run(function() return 1, 2, 3 end)
	T.eq(a, 1); T.eq(b, 2); T.eq(c, 3)
end)

T.plain('thread returns the coroutine', function()
	local co = sock.thread(function() sock.suspend(1, 2) end)
	T.eq(type(co), 'thread')
end)

T.plain('IPv6 addresses print as IPv6', function()
	local ai = assert(sock.addr('::1', 80))
	T.eq(ai:family(), 'inet6')
	T.eq(ai.addr:addr():tostring(), '::1')
	T.eq(ai:tostring(), '[::1]:80')
	local ai2 = assert(sock.addr('2001:db8::1', 0))
	T.eq(ai2.addr:addr():tostring(), '2001:db8::1')
end)

T.test('address flags of bind/listen/connect are honoured', function()
	-- numerichost forbids a name lookup: 'localhost' must be refused.
	local s = assert(sock.tcp())
	local ok, err = s:bind('localhost', 0, 'numerichost')
	T.eq(ok, nil)
	assert(err, 'expected an error')
	local ok2, err2 = s:listen('localhost', 0, {'numerichost'})
	T.eq(ok2, nil)
	local ok3, err3 = s:connect('localhost', 1, T.deadline(), 'numerichost')
	T.eq(ok3, nil)
	s:close()
	-- and without the flag the same name resolves
	local s2 = assert(sock.tcp())
	assert(s2:bind('localhost', 0))
	s2:close()
end)

T.test('options beyond reuseaddr work', function()
	local c, s = T.tcp_pair()
	assert(c:setopt('tcp_nodelay', true))
	T.eq(c:getopt('tcp_nodelay'), true)
	assert(c:setopt('so_keepalive', true))
	T.eq(c:getopt('keepalive'), true)
	assert(c:setopt('sndbuf', 65536))
	assert(c:getopt('sndbuf') >= 65536)
	assert(c:setopt('linger', 3))
	T.eq(c:getopt('linger'), 3)
	c:close(); s:close()
end)

T.done()
