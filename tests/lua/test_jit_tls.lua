-- The LuaJIT fast path of TLS connections (lua/sock_ffi.lua's
-- sock._tls_ffi_methods, lua_tls.cpp's fast_io): a handshaken connection's
-- recv and send through the FFI. It must be in use, and the same calls must
-- give the same results, errors and messages as the C closures (the C API
-- path), bad arguments, deadlines, close and a busy side included. LuaJIT
-- only (test_jit_*); labelled tls.
local T = require'testlib'
local sock = T.sock
local ffi = require'ffi'

local cert_dir, dir = T.tls_certs()
local function path(name) return cert_dir .. '/' .. name end
local server_config = sock.tls_config{cert_file = path('server.pem'), key_file = path('server.key')}
local client_config = sock.tls_config{ca_file = path('ca.pem')}

local outcome, pack = T.outcome, T.pack

-- A handshaken connection pair over loopback: client c, server side s.
local l = assert(sock.listen_tls('127.0.0.1', 0, server_config))
local port = l:getsockname():port()
local function tls_pair()
	local server = T.go(function()
		local s = assert(l:accept(T.deadline()))
		assert(s:handshake(T.deadline()))
		return s
	end)
	local c = assert(sock.connect_tls('127.0.0.1', port, client_config, T.deadline()))
	return c, server()
end

-- An upvalue of a function, by name (the fast functions' C closures).
local function upvalue(f, name)
	for i = 1, math.huge do
		local n, v = debug.getupvalue(f, i)
		if n == nil then return nil end
		if n == name then return v end
	end
end

-- Each case gets a fresh pair (c, s) with 'hello world' sent from s to c
-- (in c's socket when the case starts: the sender's send returned), a
-- 16-byte sock.buffer and a 16-byte cdata array. `expect`, when given, is
-- text the outcome must hold (on both paths: they must agree as well).
local cases = {}
local function case(name, f, expect) cases[#cases + 1] = {name = name, f = f, expect = expect} end

-- recv
case('recv(buf)', function(c, s, buf) return c:recv(buf), buf:tostring(1, 11) end, '11, "hello world"')
case('recv(buf, 3)', function(c, s, buf) return c:recv(buf, 3), buf:tostring(1, 3) end, '3, "hel"')
case('recv(buf, 0)', function(c, s, buf) return c:recv(buf, 0) end, '0')
case('recv(buf, 17)', function(c, s, buf) return c:recv(buf, 17) end, "length 17 exceeds the buffer's size 16")
case('recv(buf, 1.5)', function(c, s, buf) return c:recv(buf, 1.5) end)
case("recv(buf, '3')", function(c, s, buf) return c:recv(buf, '3') end)
case('recv(buf, nan)', function(c, s, buf) return c:recv(buf, 0/0) end)
case("recv('s')", function(c) return c:recv('a string') end, 'sock.buffer expected, got string')
case('recv()', function(c) return c:recv() end, 'sock.buffer expected, got no value')
case('recv({})', function(c) return c:recv({}) end, 'sock.buffer expected, got table')
case('recv(cdata)', function(c, s, buf, cbuf) return c:recv(cbuf) end, 'length required with a cdata buffer')
case('recv(cdata, 4)', function(c, s, buf, cbuf) return c:recv(cbuf, 4), ffi.string(cbuf, 4) end, '4, "hell"')
case('recv(char*, 5)', function(c, s, buf, cbuf)
	return c:recv(ffi.cast('char *', cbuf), 5), ffi.string(cbuf, 5)
end, '5, "hello"')
case('recv(NULL, 5)', function(c) return c:recv(ffi.cast('char *', nil), 5) end, 'got cdata')
-- (A recv that has to go to the socket may wait before it tries, on epoll
-- when the backend saw the socket run dry: with its deadline past it times
-- out then, data there or not. These take what the first recv left.)
case('recv(buf, 4, past)', function(c, s, buf) return c:recv(buf, 4, -1) end)
case('recv(buf, 4, past), plaintext in hand', function(c, s, buf)
	c:recv(buf, 5)
	return c:recv(buf, 4, -1), buf:tostring(1, 4)
end, '4, " wor"')
case('recv(buf, 4, inf)', function(c, s, buf) return c:recv(buf, 4, 1/0) end, '4')
case("recv(buf, 4, 'soon')", function(c, s, buf) return c:recv(buf, 4, 'soon') end, 'expires: number expected')
case('recv(buf, 4, nan)', function(c, s, buf) return c:recv(buf, 4, 0/0) end, 'expires is NaN')
case('recv as a function of the object, no self', function(c, s, buf)
	local f = c.recv
	return f(nil, buf), buf:tostring(1, 11)
end, '11, "hello world"')
case('recv with nothing there, deadline past', function(c, s, buf)
	return c:recv(buf), c:recv(buf, 4, 0)
end, '11, nil, "timeout"')
case('recv with nothing there, a deadline to wait for', function(c, s, buf)
	return c:recv(buf), c:recv(buf, 4, sock.clock() + 0.05)
end, '11, nil, "timeout"')
case('recv that waits for the data', function(c, s, buf)
	c:recv(buf)
	local got = T.go(function() return c:recv(buf, 3, T.deadline()), buf:tostring(1, 3) end)
	assert(s:send('xyz', nil, T.deadline()))
	return got()
end, '3, "xyz"')
case('recv after close_notify', function(c, s, buf)
	s:close()
	return c:recv(buf), c:recv(buf), c:recv(buf)
end, '11, 0, 0')
case('recv after an end without close_notify', function(c, s, buf)
	s.tcp:close()
	return c:recv(buf), c:recv(buf, 4, T.deadline())
end, '11, 0, "eof_without_close_notify"')
case('recv on a closed connection', function(c, s, buf) c:close(); return c:recv(buf) end, 'nil, "closed"')
case('close wakes a waiting recv', function(c, s, buf)
	c:recv(buf)
	local waiting = T.go(function() return c:recv(sock.buffer(4), 4, T.deadline()) end)
	c:close()
	return waiting()
end, 'nil, "closed"')
case('recv while another thread waits: busy', function(c, s, buf)
	c:recv(buf)
	local other = T.go(function() return c:recv(sock.buffer(4), 4, T.deadline()) end)
	local r = pack(c:recv(buf, 4, T.deadline()))
	assert(s:send('abc', nil, T.deadline()))
	return r[1], r[2], other()
end, 'nil, "busy", 3')
case('recv of plaintext read ahead', function(c, s, buf)
	assert(s:send('\nrest', nil, T.deadline()))
	local line = c:readline(T.deadline())
	return line, c:recv(buf), buf:tostring(1, 4)
end, '"hello world", 4, "rest"')
case('recv in a plain coroutine, plaintext in hand', function(c, s, buf)
	c:recv(buf, 5)
	return coroutine.wrap(function() return c:recv(buf) end)(), buf:tostring(1, 6)
end, '6, " world"')
case('recv in a plain coroutine that must wait', function(c, s, buf)
	c:recv(buf)
	return coroutine.wrap(function() return c:recv(buf) end)()
end, 'cannot wait inside a plain coroutine')
case('recv in a cowrap that waits', function(c, s, buf)
	c:recv(buf)
	local f = sock.cowrap(function() return c:recv(buf, 2, T.deadline()) end)
	local waiter = T.go(f)
	assert(s:send('ok', nil, T.deadline()))
	return waiter(), buf:tostring(1, 2)
end, '2, "ok"')

-- send
local function echoed(s, n)  -- what s received: n bytes
	return assert(s:readn(n, T.deadline()))
end
case("send('hey')", function(c, s) return c:send('hey'), echoed(s, 3) end, 'true, "hey"')
case("send('hey', 2)", function(c, s) return c:send('hey', 2), echoed(s, 2) end, 'true, "he"')
case("send('hey', 4)", function(c) return c:send('hey', 4) end, "length 4 exceeds the data's size 3")
case("send('hey', 1.5)", function(c, s) return c:send('hey', 1.5), echoed(s, 1) end)
case("send('hey', '2')", function(c, s) return c:send('hey', '2'), echoed(s, 2) end)
case("send('')", function(c) return c:send('') end, 'true')
case('send(buf, 4)', function(c, s, buf) buf:set('abcd'); return c:send(buf, 4), echoed(s, 4) end, 'true, "abcd"')
case('send(buf)', function(c, s, buf) buf:set('0123456789abcdef'); return c:send(buf), echoed(s, 16) end,
	'true, "0123456789abcdef"')
case('send(cdata)', function(c, s, buf, cbuf) return c:send(cbuf) end, 'length required with a cdata buffer')
case('send(cdata, 3)', function(c, s, buf, cbuf)
	ffi.copy(cbuf, 'xyz', 3)
	return c:send(cbuf, 3), echoed(s, 3)
end, 'true, "xyz"')
case('send(42)', function(c) return c:send(42) end)
case('send()', function(c) return c:send() end, 'string or sock.buffer expected, got no value')
case("send('x', nil, 'soon')", function(c) return c:send('x', nil, 'soon') end, 'expires: number expected')
case("send('x', nil, nan)", function(c) return c:send('x', nil, 0/0) end, 'expires is NaN')
case("send('x', nil, past)", function(c, s) return c:send('x', nil, -1), echoed(s, 1) end, 'true, "x"')
case('send as a function of the object, no self', function(c, s)
	local f = c.send
	return f(nil, 'abc'), echoed(s, 3)
end, 'true, "abc"')
case('send on a closed connection', function(c) c:close(); return c:send('x') end, 'nil, "closed", 0')
case('send that fills the socket, deadline past', function(c)
	local r = pack(c:send(('x'):rep(8 * 1048576), nil, 0))
	return r[1], r[2], type(r[3]), r[3] > 0
end, 'nil, "timeout", "number", true')
case('send that waits, then times out', function(c)
	local r = pack(c:send(('x'):rep(8 * 1048576), nil, sock.clock() + 0.05))
	return r[1], r[2], r[3] > 0
end, 'nil, "timeout", true')
case('close wakes a waiting send; a send meanwhile queues its output', function(c)
	local writer = T.go(function() return c:send(('x'):rep(16 * 1048576), nil, T.deadline()) end)
	local probe = c:send('y', nil, sock.clock() + 0.2)
	c:close()
	local r = pack(writer())
	return probe, r[1], r[2], type(r[3])
end, 'true, nil, "closed", "number"')
case('send in a plain coroutine, room there', function(c, s)
	return coroutine.wrap(function() return c:send('pc') end)(), echoed(s, 2)
end, 'true, "pc"')

local function run_cases(fast)
	T.eq(sock._fast_path(fast), fast)
	local results = {}
	for i, cs in ipairs(cases) do
		local c, s = tls_pair()
		assert(s:send('hello world', nil, T.deadline()))
		local buf, cbuf = sock.buffer(16), ffi.new('uint8_t[16]')
		results[i] = outcome(function() return cs.f(c, s, buf, cbuf) end)
		c:close()
		s:close()
	end
	sock._fast_path(true)
	return results
end

T.test('TLS connections take the fast path', function()
	T.eq(sock._fast_path(), true, 'lua/sock_ffi.lua did not install the fast path')
	local c, s = tls_pair()
	local c_recv, c_send = upvalue(c.recv, 'c_recv'), upvalue(c.send, 'c_send')
	assert(c_recv and c_send, "the connection's recv and send are not sock_ffi.lua's")
	local finish = upvalue(c.recv, 'tls_finish')
	assert(finish)
	-- With the data there and room to send: no C API call at all.
	local names = {[c_recv] = 'c_recv', [c_send] = 'c_send', [finish] = 'finish'}
	local calls = {}
	local function hook()
		local name = names[debug.getinfo(2, 'f').func]
		if name then calls[#calls + 1] = name end
	end
	-- (Two records: the first recv takes both from the socket, and may wait
	-- for them first; the second finds the second record in hand.)
	local buf = sock.buffer(16)
	assert(s:send('ping', nil, T.deadline()))
	assert(s:send('pong', nil, T.deadline()))
	T.eq(c:recv(buf, 4, T.deadline()), 4)
	debug.sethook(hook, 'c')
	local ok = c:send('pong', nil, T.deadline())
	local n = c:recv(buf, 16, T.deadline())
	debug.sethook()
	T.eq(ok, true)
	T.eq(n, 4)
	T.eq(buf:tostring(1, 4), 'pong')
	T.eq(table.concat(calls, ' '), '', 'calls through the C API')
	-- A recv that waits finishes through the C API (only it can yield).
	local waiter = T.go(function()
		debug.sethook(hook, 'c')
		local r = c:recv(buf, 16, T.deadline())
		debug.sethook()
		return r
	end)
	assert(s:send('later', nil, T.deadline()))
	T.eq(waiter(), 5)
	T.eq(table.concat(calls, ' '), 'finish')
	-- With the fast path off, the same calls reach the C closures.
	calls = {}
	sock._fast_path(false)
	assert(s:send('ping', nil, T.deadline()))
	debug.sethook(hook, 'c')
	c:send('pong', nil, T.deadline())
	c:recv(buf, 16, T.deadline())
	debug.sethook()
	sock._fast_path(true)
	T.eq(table.concat(calls, ' '), 'c_send c_recv')
	c:close()
	s:close()
end)

T.test('the fast path and the C API path give the same results and errors', function()
	T.paths_agree(cases, run_cases)
	assert(#cases > 50)
end, 60)

-- Outside any sock thread: the fast function returns `slow` and the C
-- closure raises.
local outside = {}
T.test('(a connection for the next case)', function()
	outside.c, outside.s = tls_pair()
end)
T.plain('outside a thread both paths raise the same error', function()
	local buf = sock.buffer(4)
	local r = {}
	for _, fast in ipairs{true, false} do
		sock._fast_path(fast)
		r[#r + 1] = outcome(function() return outside.c:recv(buf) end)
		r[#r + 1] = outcome(function() return outside.c:send('x') end)
	end
	sock._fast_path(true)
	T.eq(r[1], r[3])
	T.eq(r[2], r[4])
	assert(r[1]:find('inside a sock thread', 1, true), r[1])
	assert(r[2]:find('inside a sock thread', 1, true), r[2])
end)
T.test('(closed)', function()
	outside.c:close()
	outside.s:close()
end)

-- Enough round trips for the JIT to compile the loops (traces with the FFI
-- calls in them), of sizes from 1 byte to several records, every byte
-- checked: each side keeps a checksum of what it sent and what it got.
T.test('a compiled TLS echo loop moves every byte', function()
	local c, s = tls_pair()
	local echo = T.go(function()
		local buf = sock.buffer(65536)
		local total = 0
		while true do
			local n, err = s:recv(buf, 65536, T.deadline())
			if not n then return nil, err end
			if n == 0 then return total end
			total = total + n
			local ok, serr = s:send(buf, n, T.deadline())
			if not ok then return nil, serr end
		end
	end)
	local function sum(p, n, acc)  -- (a checksum that sees the order)
		for i = 0, n - 1 do acc = (acc * 31 + p[i]) % 4294967291 end
		return acc
	end
	local out = ffi.new('uint8_t[?]', 40000)
	local back = ffi.new('uint8_t[?]', 40000)
	local sent_sum, got_sum, moved = 0, 0, 0
	local seed = 1
	for round = 1, 4000 do
		seed = (seed * 1103515245 + 12345) % 2147483648
		local n = round % 500 == 0 and 20000 + seed % 20000 or 1 + seed % 300
		for i = 0, n - 1 do out[i] = (seed + i * 7) % 256 end
		sent_sum = sum(out, n, sent_sum)
		assert(c:send(out, n, T.deadline()))
		local got = 0
		while got < n do
			local k = assert(c:recv(back + got, n - got, T.deadline()))
			assert(k > 0, 'the echo ended early')
			got = got + k
		end
		got_sum = sum(back, n, got_sum)
		moved = moved + n
	end
	T.eq(got_sum, sent_sum, 'checksum of what came back')
	c:close()
	T.eq(echo(), moved, 'bytes the echo server saw')
	s:close()
end, 60)

T.test('(the listener closed)', function() l:close() end)
if dir then os.execute('rm -rf ' .. dir) end
T.done()
