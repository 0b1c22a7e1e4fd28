-- What luapower's HTTP stack (http, http_server, http_client) and its TLS
-- layer (sock_libtls) do with sockets and threads, written from their
-- sources: a TLS-like class built by copying sock.tcp_class that inherits
-- send/recvn/recvall/recvall_read over its own recv and _send; the server's
-- line reader receiving into a pointer inside a buffer; close(0) twice and
-- closed(); shutdown('w', expires) then reading to the end; the client's
-- suspend/resume hand-over between threads; and webb's per-request context
-- kept by save_thread_context/restore_thread_context across waits.
local T = require'testlib'
local sock = T.sock

local ffi = type(jit) == 'table' and require'ffi' or nil

-- sock_libtls's way: glue.update({}, sock.tcp_class), its own recv and
-- _send, objects made by glue.object (a table that is its own metatable).
-- The "encryption" here adds 1 to every byte, and _send moves at most 3
-- bytes per call, so the inherited send must loop over partial sends.
local function shift(s, by)
	return (s:gsub('.', function(c) return string.char((c:byte() + by) % 256) end))
end

local function make_wrapped_class()
	local class = {}
	for k, v in pairs(sock.tcp_class) do class[k] = v end  -- glue.update: own keys only
	class.istlssocket = true
	function class:_send(buf, sz, expires)
		local s = type(buf) == 'string' and buf or ffi.string(buf, sz)
		local n = math.min(sz, 3)
		local ok, err = self.tcp:send(shift(s:sub(1, n), 1), nil, expires)
		if not ok then return nil, err end
		return n
	end
	function class:recv(buf, sz, expires)
		local tmp = sock.buffer(sz)
		local n, err = self.tcp:recv(tmp, sz, expires)
		if not n then return nil, err end
		local s = shift(tmp:tostring(1, n), -1)
		if ffi and type(buf) == 'cdata' then
			ffi.copy(buf, s, n)
		else
			buf:set(s)
		end
		return n
	end
	function class:close()
		if self._closed then return true end
		self._closed = true
		return self.tcp:close()
	end
	function class:closed() return self._closed or false end
	return class
end

local function wrap(class, tcp)
	local o = {tcp = tcp}
	o.__index = class  -- glue.object
	return setmetatable(o, o)
end

T.test('a class copied from tcp_class inherits send, recvn, recvall and recvall_read over its own recv/_send', function()
	local class = make_wrapped_class()
	local c, s = T.tcp_pair()
	local wc, ws = wrap(class, c), wrap(class, s)
	-- send loops over _send's partial counts
	assert(wc:send('hello, world', nil, T.deadline()))
	T.eq(s:readn(12, T.deadline()), shift('hello, world', 1), 'on the wire')
	-- recvn loops over the class's recv (cdata on LuaJIT: pointer steps)
	assert(c:send(shift('abcdefgh', 1), nil, T.deadline()))
	if ffi then
		local buf = ffi.new('uint8_t[?]', 8)
		local got, n = ws:recvn(buf, 8, T.deadline())
		T.eq(got, buf)
		T.eq(ffi.string(buf, n), 'abcdefgh')
	else
		T.eq(s:readn(8, T.deadline()), shift('abcdefgh', 1))
	end
	-- a string sent through send with a length sends that much
	assert(wc:send('xyz--', 3, T.deadline()))
	T.eq(s:readn(3, T.deadline()), shift('xyz', 1))
	-- recvall and recvall_read read to the end through the class's recv
	assert(c:send(shift('to the end', 1), nil, T.deadline()))
	assert(c:shutdown('w'))
	local read = assert(ws:recvall_read(T.deadline()))
	T.eq(read(), 'to the end')
	T.eq(read(), nil)
	c:close()
	-- the sockets themselves still take their C methods, and the class's
	-- send is the same function for both
	T.eq(sock.tcp_class.send, class.send)
	assert(wc:close())
	assert(wc:close())
	T.eq(wc:closed(), true)
	T.eq(s:closed(), false)
	s:close()
end)

T.test('recvn through a copied class reports the end of the stream as eof with the count', function()
	local class = make_wrapped_class()
	local c, s = T.tcp_pair()
	local ws = wrap(class, s)
	assert(c:send(shift('abc', 1), nil, T.deadline()))
	c:close()
	local buf = ffi and ffi.new('uint8_t[?]', 10) or sock.buffer(10)
	if ffi then
		local ok, err, got = ws:recvn(buf, 10, T.deadline())
		T.eq(ok, nil)
		T.eq(err, 'eof')
		T.eq(got, 3)
	else
		-- (a sock.buffer cannot be stepped into: one recv gets all three
		-- bytes, and the next part needs a pointer)
		T.raises('needs a string or a cdata buffer', ws.recvn, ws, buf, 10, T.deadline())
	end
	s:close()
end)

T.test('_send is one send: it returns the count moved, 0 for nothing', function()
	local c, s = T.tcp_pair()
	T.eq(c:_send('', nil, T.deadline()), 0)
	T.eq(c:_send('abc', nil, T.deadline()), 3)
	T.eq(c:_send('abcdef', 2, T.deadline()), 2)
	T.eq(s:readn(5, T.deadline()), 'abcab')
	-- more than the socket's buffers hold: the count is what went, all of
	-- which arrives (and it never blocks for the rest)
	local big = ('x'):rep(16 * 1024 * 1024)
	local n = assert(c:_send(big, nil, T.deadline()))
	assert(n > 0 and n <= #big, 'bad count ' .. n)
	c:close()
	local _, len = assert(s:recvall(T.deadline()))
	T.eq(len, n, 'bytes that arrived')
	s:close()
	T.raises("bad argument #1 to '_send'", sock.tcp_class._send, {})
end)

T.test('an object of another class with no _send gets a clear error from send', function()
	T.raises("bad argument #1 to 'send' (socket, or an object with a _send method, expected)",
		sock.tcp_class.send, {}, 'x')
	T.raises("bad argument #1 to 'send' (socket expected", sock.tcp_class.send, 42, 'x')
end)

-- http_server's request loop, as luapower's linebuffer drives it: recv into
-- buf + j (a pointer inside the buffer on LuaJIT), 0 at the end of the
-- stream, close(0) on an error path and again by the handler, closed().
T.test('the HTTP server pattern: line reads into a moving pointer, close(0) twice, closed()', function()
	local l = assert(sock.tcp())
	assert(l:setopt('reuseaddr', true))  -- (asserted by http_server)
	assert(l:listen('127.0.0.1', 0))      -- no backlog argument
	local port = l:getsockname():port()
	local served = {}
	local wait_server = T.go(function()
		local ctcp = assert(l:accept(T.deadline()))
		local size = 64
		local buf = ffi and ffi.new('uint8_t[?]', size) or sock.buffer(size)
		local j = 0
		local function read_more(expires)
			if ffi then return ctcp:recv(buf + j, size - j, expires) end
			local tmp = sock.buffer(size - j)
			local n, err = ctcp:recv(tmp, size - j, expires)
			if n and n > 0 then buf:set(tmp:tostring(1, n), j + 1) end
			return n, err
		end
		local function text(a, b) return ffi and ffi.string(buf + a, b - a) or buf:tostring(a + 1, b) end
		while not ctcp:closed() do
			local n, err = read_more(T.deadline())
			if not n then served.err = err; break end
			if n == 0 then
				served.eof = true
				-- an error constructor closes with an expired deadline, and the
				-- handler closes again
				assert(ctcp:close(0))
				assert(ctcp:close())
				break
			end
			j = j + n
			local s = text(0, j)
			local line_end = s:find('\r\n', 1, true)
			if line_end then
				served[#served + 1] = s:sub(1, line_end - 1)
				local rest = s:sub(line_end + 2)
				if ffi then ffi.copy(buf, rest, #rest) else buf:set(rest, 1) end
				j = #rest
				assert(ctcp:send('HTTP/1.1 200 OK\r\n', nil, T.deadline()))
			end
		end
		return ctcp:closed()
	end)
	local c = assert(sock.tcp())
	assert(c:bind('127.0.0.1'))  -- http_client binds a host only
	assert(c:connect('127.0.0.1', port, T.deadline()))
	assert(c:send('GET / HTTP/1.1\r\n', nil, T.deadline()))
	T.eq(c:readline(T.deadline()), 'HTTP/1.1 200 OK')
	assert(c:send('GET /b HTTP/1.1\r\nGET /c', nil, T.deadline()))
	T.eq(c:readline(T.deadline()), 'HTTP/1.1 200 OK')
	assert(c:send(' HTTP/1.1\r\n', nil, T.deadline()))
	T.eq(c:readline(T.deadline()), 'HTTP/1.1 200 OK')
	-- http's send_body: shutdown('w', expires), then read until closed
	assert(c:shutdown('w', T.deadline()))
	local rest, err = c:recv(sock.buffer(16), 16, T.deadline())
	T.eq(rest, 0, 'the server closed: recv gives 0')
	T.eq(wait_server(), true)
	T.eq(served.eof, true)
	T.eq(served[1], 'GET / HTTP/1.1')
	T.eq(served[2], 'GET /b HTTP/1.1')
	T.eq(served[3], 'GET /c HTTP/1.1')
	c:close()
	l:close()
end)

-- http_client's connection hand-over: a request thread suspends waiting
-- for a connection; another resumes it with 'connect' or with a connection.
T.test('the HTTP client pattern: suspend() returns what another thread resumes it with', function()
	local got = {}
	local waiter
	local done = T.latch(1)
	waiter = sock.newthread(function()
		got[1] = sock.suspend()
		got[2], got[3] = sock.suspend()
		done.done()
	end)
	sock.resume(waiter)  -- runs until its first suspend
	local back = T.go(function()
		sock.sleep(0.001)
		sock.resume(waiter, 'connect')
		sock.resume(waiter, 'http', 42)
		return true
	end)
	T.eq(back(), true)
	assert(done.wait(5), 'the waiter did not finish')
	T.eq(got[1], 'connect')
	T.eq(got[2], 'http')
	T.eq(got[3], 42)
end)

-- webb's use of the hooks: a request context that follows each thread.
T.test('save_thread_context/restore_thread_context keep a per-thread context across waits', function()
	local cx
	local thread_cx = setmetatable({}, {__mode = 'k'})
	local saved, restored = 0, 0
	sock.save_thread_context = function(thread) saved = saved + 1; thread_cx[thread] = cx end
	sock.restore_thread_context = function(thread) restored = restored + 1; cx = thread_cx[thread] end
	local ok, err = sock.pcall(function()
		local c, s = T.tcp_pair()
		local results = {}
		local latch = T.latch(2)
		local function request(name, delay)
			cx = name  -- the server sets the context when a request starts
			thread_cx[sock.currentthread()] = cx
			sock.sleep(delay)
			results[#results + 1] = name .. '=' .. tostring(cx)
			-- a thread started by a request inherits its context
			local child_cx
			sock.thread(function()
				child_cx = cx
				sock.sleep(0.001)
				child_cx = child_cx .. '/' .. tostring(cx)
			end)
			sock.sleep(0.005)
			results[#results + 1] = name .. '.child=' .. tostring(child_cx)
			-- a cowrap'ped coroutine that waits keeps it too
			local w = sock.cowrap(function(yield)
				sock.sleep(0.001)
				yield(cx)
			end)
			-- (w() waits: the other request may append meanwhile, so the
			-- index is taken after it returns, not before)
			local got = tostring(w())
			results[#results + 1] = name .. '.cowrap=' .. got
			latch.done()
		end
		sock.thread(request, 'A', 0.003)
		sock.thread(request, 'B', 0.001)
		assert(latch.wait(5), 'the requests did not finish')
		table.sort(results)
		T.eq(table.concat(results, ' '),
			'A.child=A/A A.cowrap=A A=A B.child=B/B B.cowrap=B B=B')
		c:close()
		s:close()
	end)
	sock.save_thread_context = nil  -- back to the no-op defaults
	sock.restore_thread_context = nil
	assert(ok, err)
	assert(saved >= 6, 'save_thread_context was called ' .. saved .. ' times')
	assert(restored >= 10, 'restore_thread_context was called ' .. restored .. ' times')
	T.eq(type(sock.save_thread_context), 'function')
	T.eq(rawget(sock, 'save_thread_context'), nil)
end)

T.plain('the context hooks are luapower\'s no-ops by default and take only functions', function()
	T.eq(type(sock.save_thread_context), 'function')
	T.eq(type(sock.restore_thread_context), 'function')
	T.eq(sock.save_thread_context(coroutine.create(function() end)), nil)
	local ok, err = pcall(function() sock.restore_thread_context = 42 end)
	assert(not ok and tostring(err):find('function expected', 1, true), tostring(err))
	-- other fields are stored as usual
	sock.some_field_of_a_program = 1
	T.eq(rawget(sock, 'some_field_of_a_program'), 1)
	sock.some_field_of_a_program = nil
end)

T.done()
