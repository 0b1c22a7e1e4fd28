-- s:sendfile(path | fd | file, [offset], [len], [expires]): zero-copy
-- sendfile(2) with a read + send fallback, waiting for writability.
local T = require'testlib'
local sock = T.sock
local unpack = table.unpack or unpack

local function pack(...) return {n = select('#', ...), ...} end

-- Run f in a new thread now; the returned function waits for its results.
local function go(f, ...)
	local job = sock.sleep_job()
	local res, waiting
	sock.thread(function(...)
		res = pack(f(...))
		if waiting then job:wakeup() end
	end, ...)
	return function()
		if not res then
			waiting = true
			job:sleep(10)
		end
		assert(res, 'thread did not finish in time')
		return unpack(res, 1, res.n)
	end
end

-- A temporary file holding `data`; removed by the returned function.
local function tmpfile(data)
	local path = os.tmpname()
	local f = assert(io.open(path, 'wb'))
	f:write(data)
	f:close()
	return path, function() os.remove(path) end
end

local function payload(n)
	local parts = {}
	for i = 1, math.ceil(n / 8) do parts[i] = ('%07d\n'):format(i) end
	return table.concat(parts):sub(1, n)
end

local BIG = payload(600000)

-- A connected TCP pair with small socket buffers, so that sending BIG must
-- wait for the reader many times over.
local function small_pair()
	local c, s = T.tcp_pair()
	assert(c:setopt('sndbuf', 16384))
	assert(s:setopt('rcvbuf', 16384))
	return c, s
end

T.test('a whole file by path, larger than the socket buffer', function()
	local path, rm = tmpfile(BIG)
	local c, s = small_pair()
	local reader = go(function() return s:readn(#BIG, T.deadline(10)) end)
	T.eq(c:sendfile(path, nil, nil, T.deadline(10)), #BIG)
	local got = reader()
	T.eq(#got, #BIG)
	assert(got == BIG, 'file content corrupted')
	c:close()
	s:close()
	rm()
end)

T.test('offset and len select a range', function()
	local path, rm = tmpfile('0123456789abcdef')
	local c, s = T.tcp_pair()
	T.eq(c:sendfile(path, 4, 6, T.deadline()), 6)
	T.eq(c:sendfile(path, 14, nil, T.deadline()), 2)  -- up to the end
	T.eq(c:sendfile(path, 0, 0, T.deadline()), 0)
	T.eq(c:sendfile(path, 100, nil, T.deadline()), 0)  -- past the end: nothing to send
	T.eq(s:readn(8, T.deadline()), '456789ef')
	c:close()
	s:close()
	rm()
end)

T.test('a len beyond the end of the file is eof with the count sent', function()
	local path, rm = tmpfile('short')
	local c, s = T.tcp_pair()
	local n, err, sent = c:sendfile(path, 0, 100, T.deadline())
	T.eq(n, nil)
	T.eq(err, 'eof')
	T.eq(sent, 5)
	T.eq(s:readn(5, T.deadline()), 'short')
	c:close()
	s:close()
	rm()
end)

T.test('a missing file or a directory fails without sending', function()
	local c, s = T.tcp_pair()
	local n, err, sent = c:sendfile('/nonexistent/sock-test-file')
	T.eq(n, nil)
	T.eq(err, 'not_found')
	T.eq(sent, 0)
	n, err, sent = c:sendfile('/', nil, nil, T.deadline())
	T.eq(n, nil)
	T.eq(err, 'is_a_directory')
	T.eq(sent, 0)
	n, err, sent = c:sendfile(987654, nil, nil, T.deadline())  -- no such fd
	T.eq(n, nil)
	T.eq(err, 'invalid_argument')
	T.eq(sent, 0)
	c:close()
	s:close()
end)

T.test('a Lua file: from its current position, which stays where it was', function()
	local path, rm = tmpfile('0123456789')
	local f = assert(io.open(path, 'rb'))
	T.eq(f:read(3), '012')  -- stdio reads ahead; the Lua position is 3
	local c, s = T.tcp_pair()
	T.eq(c:sendfile(f, nil, 4, T.deadline()), 4)
	T.eq(s:readn(4, T.deadline()), '3456')
	T.eq(f:seek(), 3)
	T.eq(c:sendfile(f, 8, nil, T.deadline()), 2)
	T.eq(s:readn(2, T.deadline()), '89')
	f:close()
	T.raises("bad argument #2 to 'sendfile' (attempt to use a closed file)", c.sendfile, c, f)
	-- a file that cannot seek is read where it stands
	local p = io.popen('echo piped')
	T.eq(c:sendfile(p, nil, nil, T.deadline()), 6)
	T.eq(s:readn(6, T.deadline()), 'piped\n')
	p:close()
	c:close()
	s:close()
	rm()
end)

T.test('an fd that sendfile cannot read from (a socket) falls back to read + send', function()
	local src_a, src_b = assert(sock.socketpair())
	assert(src_a:send('from a socket'))
	local c, s = T.tcp_pair()
	T.eq(c:sendfile(src_b:fileno(), nil, 13, T.deadline()), 13)
	T.eq(s:readn(13, T.deadline()), 'from a socket')
	-- the fd's own position (here: the socket's stream) moved on
	assert(src_a:send('!'))
	T.eq(src_b:readn(1, T.deadline()), '!')
	src_a:close()
	src_b:close()
	c:close()
	s:close()
end)

T.test('a /proc file (no sendfile support) falls back to read + send', function()
	local f = io.open('/proc/version', 'rb')
	if not f then return end  -- no procfs: nothing to test
	local expected = f:read('*a')
	f:close()
	local c, s = T.tcp_pair()
	T.eq(c:sendfile('/proc/version', nil, nil, T.deadline()), #expected)
	T.eq(s:readn(#expected, T.deadline()), expected)
	c:close()
	s:close()
end)

T.test('the read + send fallback waits for writability like sendfile does', function()
	local path, rm = tmpfile(BIG)
	sock._sendfile_force_copy(true)
	local c, s = small_pair()
	local reader = go(function() return s:readn(#BIG - 1000, T.deadline(10)) end)
	local ok, n, err = sock.pcall(c.sendfile, c, path, 1000, nil, T.deadline(10))
	sock._sendfile_force_copy(false)
	assert(ok, n)
	T.eq(n, #BIG - 1000, err)
	assert(reader() == BIG:sub(1001), 'file content corrupted')
	c:close()
	s:close()
	rm()
end)

T.test('a deadline: timeout with the count sent so far', function()
	local path, rm = tmpfile(BIG .. BIG .. BIG .. BIG)
	local c, s = small_pair()
	local t0 = sock.clock()
	local n, err, sent = c:sendfile(path, nil, nil, sock.clock() + 0.1)  -- nobody reads
	T.eq(n, nil)
	T.eq(err, 'timeout')
	assert(sent > 0 and sent < 4 * #BIG, 'sent ' .. tostring(sent))
	assert(sock.clock() - t0 >= 0.09, 'returned before the deadline')
	-- what was sent is intact, and the socket still works
	local got = s:readn(sent, T.deadline())
	assert(got == (BIG .. BIG):sub(1, sent), 'content corrupted')
	assert(c:send('ok', nil, T.deadline()))
	T.eq(s:readn(2, T.deadline()), 'ok')
	local n2, err2 = c:sendfile(path, nil, nil, sock.clock() - 1)
	T.eq(err2, 'timeout')  -- a deadline already past, with a full socket buffer or not
	c:close()
	s:close()
	rm()
end)

T.test('closing the socket wakes a waiting sendfile with closed', function()
	local path, rm = tmpfile(BIG .. BIG)
	local c, s = small_pair()
	local wait = go(function() return c:sendfile(path, nil, nil, T.deadline()) end)
	c:close()
	local n, err, sent = wait()
	T.eq(n, nil)
	T.eq(err, 'closed')
	assert(sent > 0)
	local n2, err2, sent2 = c:sendfile(path)
	T.eq(err2, 'closed')
	T.eq(sent2, 0)
	s:close()
	rm()
end)

T.test('a second writer gets busy while sendfile waits', function()
	local path, rm = tmpfile(BIG)
	local c, s = small_pair()
	local wait = go(function() return c:sendfile(path, nil, nil, T.deadline(10)) end)
	local ok, err = c:send('x', nil, T.deadline())
	T.eq(err, 'busy')
	local n, err2, sent = c:sendfile(path)
	T.eq(err2, 'busy')
	T.eq(sent, 0)
	T.eq(#s:readn(#BIG, T.deadline(10)), #BIG)
	T.eq(wait(), #BIG)
	c:close()
	s:close()
	rm()
end)

T.test('over unix sockets: stream, and a datagram pair (one datagram)', function()
	local path, rm = tmpfile('datagram body')
	local a, b = assert(sock.socketpair())
	T.eq(a:sendfile(path, nil, nil, T.deadline()), 13)
	T.eq(b:readn(13, T.deadline()), 'datagram body')
	a:close()
	b:close()
	a, b = assert(sock.socketpair('udp'))
	T.eq(a:sendfile(path, 0, 8, T.deadline()), 8)
	local buf = sock.buffer(64)
	T.eq(b:recv(buf, 64, T.deadline()), 8)
	T.eq(buf:tostring(1, 8), 'datagram')
	a:close()
	b:close()
	rm()
end)

T.test('a peer that went away: broken pipe or reset, not a crash', function()
	local path, rm = tmpfile(BIG)
	local c, s = T.tcp_pair()
	s:close()
	local n, err, sent = c:sendfile(path, nil, nil, T.deadline())
	-- the first bytes may still be accepted by the kernel before the RST
	T.eq(n, nil)
	assert(err == 'broken_pipe' or err == 'connection_reset', err)
	assert(type(sent) == 'number')
	c:close()
	rm()
end)

T.test('bad arguments raise naming the function and argument', function()
	local c, s = T.tcp_pair()
	T.raises("bad argument #2 to 'sendfile'", c.sendfile, c)
	T.raises("bad argument #2 to 'sendfile'", c.sendfile, c, {})
	T.raises("bad argument #2 to 'sendfile'", c.sendfile, c, -1)
	T.raises("bad argument #2 to 'sendfile'", c.sendfile, c, 1.5)
	T.raises("bad argument #2 to 'sendfile'", c.sendfile, c, 'a\0b')
	T.raises("bad argument #3 to 'sendfile'", c.sendfile, c, 'x', -1)
	T.raises("bad argument #3 to 'sendfile'", c.sendfile, c, 'x', 'a')
	T.raises("bad argument #4 to 'sendfile'", c.sendfile, c, 'x', nil, 2.5)
	T.raises("bad argument #4 to 'sendfile'", c.sendfile, c, 'x', nil, -3)
	T.raises("bad argument #5 to 'sendfile'", c.sendfile, c, 'x', nil, nil, 'soon')
	T.raises("bad argument #1 to 'sendfile'", c.sendfile, 'x', 'y')
	c:close()
	s:close()
end)

T.plain('sendfile outside a thread raises', function()
	local a, b = assert(sock.socketpair())
	T.raises('only inside a sock thread', a.sendfile, a, '/proc/version')
	a:close()
	b:close()
end)

T.done()
