-- The LuaJIT fast path (lua/sock_ffi.lua): recv, send and the sock.buffer
-- accessors through the FFI. It must be in use on LuaJIT (a silent fallback
-- to the C API path would only show as lost speed), and it must give the
-- same results, errors and messages as the C API path for the same calls,
-- bad arguments included. LuaJIT only (test_jit_*).
local T = require'testlib'
local sock = T.sock
local ffi = require'ffi'

local MSG_PEEK = 2

local outcome, show, pack = T.outcome, T.show, T.pack

-- Each case gets a fresh socket pair (a, b) with 'hello world' sent from a
-- to b, a 16-byte sock.buffer and a 16-byte cdata array; it returns what the
-- calls returned and what the buffers hold. `line` is where the calls are
-- made: an error's position names it on both paths.
local cases = {}
local function case(name, f) cases[#cases + 1] = {name = name, f = f} end

-- recv
case('recv(buf)', function(a, b, buf) return b:recv(buf), buf:tostring(1, 11) end)
case('recv(buf, 3)', function(a, b, buf) return b:recv(buf, 3), buf:tostring(1, 3) end)
case('recv(buf, 0)', function(a, b, buf) return b:recv(buf, 0) end)
case('recv(buf, -1)', function(a, b, buf) return b:recv(buf, -1) end)
case('recv(buf, 1.5)', function(a, b, buf) return b:recv(buf, 1.5) end)
case("recv(buf, '3')", function(a, b, buf) return b:recv(buf, '3') end)
case('recv(buf, 17)', function(a, b, buf) return b:recv(buf, 17) end)
case('recv(buf, 2^53)', function(a, b, buf) return b:recv(buf, 2^53) end)
case('recv(buf, 2^64)', function(a, b, buf) return b:recv(buf, 2^64) end)
case('recv(buf, nan)', function(a, b, buf) return b:recv(buf, 0/0) end)
case('recv(buf, inf)', function(a, b, buf) return b:recv(buf, 1/0) end)
case("recv('s')", function(a, b) return b:recv('a string') end)
case('recv(nil)', function(a, b) return b:recv() end)
case('recv({})', function(a, b) return b:recv({}) end)
case('recv(cdata)', function(a, b, buf, cbuf) return b:recv(cbuf) end)
case('recv(cdata, 4)', function(a, b, buf, cbuf) return b:recv(cbuf, 4), ffi.string(cbuf, 4) end)
case('recv(char*, 5)', function(a, b, buf, cbuf) return b:recv(ffi.cast('char *', cbuf), 5), ffi.string(cbuf, 5) end)
case('recv(const char*, 5)', function(a, b, buf, cbuf) return b:recv(ffi.cast('const char *', cbuf), 5), ffi.string(cbuf, 5) end)
case('recv(int64 cdata, 5)', function(a, b) return b:recv(ffi.new('int64_t', 0), 5) end)
case('recv(buf, 4, past)', function(a, b, buf) return b:recv(buf, 4, -1), buf:tostring(1, 4) end)
case('recv(buf, 4, 0)', function(a, b, buf) return b:recv(buf, 4, 0) end)
case('recv(buf, 4, inf)', function(a, b, buf) return b:recv(buf, 4, 1/0) end)
case('recv(buf, 4, -inf)', function(a, b, buf) return b:recv(buf, 4, -1/0) end)
case("recv(buf, 4, 'soon')", function(a, b, buf) return b:recv(buf, 4, 'soon') end)
case('recv(buf, 4, nan)', function(a, b, buf) return b:recv(buf, 4, 0/0) end)
case('recv(buf, 4, nil, PEEK)', function(a, b, buf)
	local n1 = b:recv(buf, 4, nil, MSG_PEEK)
	return n1, b:recv(buf, 16), buf:tostring(1, 11)
end)
case('recv(buf, 4, nil, -1)', function(a, b, buf) return b:recv(buf, 4, nil, -1) end)
case('recv(buf, 4, nil, 1.5)', function(a, b, buf) return b:recv(buf, 4, nil, 1.5) end)
case('recv(buf, 4, nil, unknown flag)', function(a, b, buf) return b:recv(buf, 4, nil, 0x20000000) end)
case('recv(buf, 4, nil, 2^31)', function(a, b, buf) return b:recv(buf, 4, nil, 2^31) end)
case("recv(buf, 4, nil, 'x')", function(a, b, buf) return b:recv(buf, 4, nil, 'x') end)
case('class recv on {}', function(a, b, buf) return sock.tcp_class.recv({}, buf) end)
case('class recv on 42', function(a, b, buf) return sock.tcp_class.recv(42, buf) end)
case('recv as a function of the object', function(a, b, buf) local f = b.recv; return f(nil, buf) end)
case('recv on a closed socket', function(a, b, buf) b:close(); return b:recv(buf) end)
case('recv with nothing there, deadline past', function(a, b, buf)
	local n = b:recv(buf)
	return n, b:recv(buf, 4, 0)
end)
case('recv after the peer closed', function(a, b, buf)
	a:close()
	return b:recv(buf), b:recv(buf), b:recv(buf)
end)
case('recv of bytes read ahead', function(a, b, buf)
	a:send('\nrest')
	local line = b:readline(T.deadline())
	return line, b:recv(buf), buf:tostring(1, 4)
end)
case('recv while another thread waits', function(a, b, buf)
	local n1 = b:recv(buf)  -- takes 'hello world'
	local other = T.go(function() return b:recv(sock.buffer(4), 4, T.deadline()) end)
	local r = pack(b:recv(buf, 4))
	a:send('abc')
	return r[1], r[2], other()
end)
case('recv in a plain coroutine', function(a, b, buf)
	return coroutine.wrap(function() return b:recv(buf) end)()
end)
case('recv in a cowrap', function(a, b, buf)
	return sock.cowrap(function() return b:recv(buf) end)(), buf:tostring(1, 11)
end)
case('recv that waits', function(a, b, buf)
	b:recv(buf)
	local got = T.go(function() return b:recv(buf, 3, T.deadline()), buf:tostring(1, 3) end)
	a:send('xyz')
	return got()
end)

-- send
case("send('hey')", function(a, b, buf) return a:send('hey'), b:recv(buf), buf:tostring(1, 14) end)
case("send('hey', 2)", function(a, b, buf) return a:send('hey', 2), b:recv(buf), buf:tostring(1, 13) end)
case("send('hey', 4)", function(a, b) return a:send('hey', 4) end)
case("send('hey', -1)", function(a, b) return a:send('hey', -1) end)
case("send('hey', 1.5)", function(a, b) return a:send('hey', 1.5) end)
case("send('hey', '2')", function(a, b) return a:send('hey', '2') end)
case("send('')", function(a, b) return a:send('') end)
case("send('', 0)", function(a, b) return a:send('', 0) end)
case('send(buf, 4)', function(a, b, buf) buf:set('abcd'); return a:send(buf, 4) end)
case('send(buf)', function(a, b, buf) return a:send(buf) end)
case('send(cdata)', function(a, b, buf, cbuf) return a:send(cbuf) end)
case('send(cdata, 3)', function(a, b, buf, cbuf) ffi.copy(cbuf, 'xyz', 3); return a:send(cbuf, 3) end)
case('send(42)', function(a, b) return a:send(42) end)
case('send(nil)', function(a, b) return a:send() end)
case("send('x', nil, 'soon')", function(a, b) return a:send('x', nil, 'soon') end)
case("send('x', nil, nan)", function(a, b) return a:send('x', nil, 0/0) end)
case("send('x', nil, past)", function(a, b) return a:send('x', nil, -1) end)
case("send('x', nil, nil, unknown flag)", function(a, b) return a:send('x', nil, nil, 0x20000000) end)
case("send('x', nil, nil, -1)", function(a, b) return a:send('x', nil, nil, -1) end)
case("send('x', nil, nil, MSG_NOSIGNAL)", function(a, b) return a:send('x', nil, nil, 0x4000) end)
case('class send on {}', function(a, b) return sock.tcp_class.send({}, 'x') end)
case('class send on 42', function(a, b) return sock.tcp_class.send(42, 'x') end)
case('send on a closed socket', function(a, b) a:close(); return a:send('x') end)
case('send in a plain coroutine', function(a, b)
	return coroutine.wrap(function() return a:send('x') end)()
end)
case('send after the peer closed', function(a, b)
	b:close()
	local r = pack(a:send(('x'):rep(65536), nil, T.deadline()))
	return r[1], r[2], type(r[3])
end)
case('send that fills the socket, deadline past', function(a, b)
	local r = pack(a:send(('x'):rep(8 * 1048576), nil, 0))
	return r[1], r[2], type(r[3]), r[3] > 0
end)
case('udp send', function()
	local u1, u2 = sock.socketpair('udp')
	local r = pack(u1:send('dgram'), u2:recv(sock.buffer(16)), u1:send(''), u1:send('ab', 1))
	u1:close()
	r[#r + 1] = u1:send('x')
	u2:close()
	return (table.unpack or unpack)(r)
end)
case('udp send on a closed socket', function()
	local u1, u2 = sock.socketpair('udp')
	u1:close()
	u2:close()
	return u1:send('x')
end)

-- sock.buffer's accessors
local function bcase(name, f)
	case(name, function(a, b, buf)
		buf:set('0123456789abcdef')
		return f(buf)
	end)
end
bcase('#buf', function(buf) return #buf, #sock.buffer(0), #sock.buffer('xy') end)
bcase('buf:size()', function(buf) return buf:size() end)
for _, args in ipairs{{}, {2}, {-3}, {2, -2}, {0}, {100}, {-100}, {3, 2}, {5, 5}, {nil, 3}, {-100, 100},
		{1.5}, {'2'}, {2, '4'}, {2^60}, {2^63}, {0/0}, {1, 1/0}, {{}}, {true}} do
	bcase(('buf:tostring(%s)'):format(table.concat((function()
		local t = {}
		for i = 1, 2 do if args[i] ~= nil or i == 1 then t[#t + 1] = show(args[i]) end end
		return t
	end)(), ', ')), function(buf) return buf:tostring(args[1], args[2]) end)
end
bcase('tostring of an empty buffer', function() return sock.buffer(0):tostring() end)
bcase('the accessors called on other values', function(buf)
	local mt = getmetatable(buf)
	return outcome(function() return mt.__len(42) end), outcome(function() return mt.__index.size({}) end),
		outcome(function() return mt.__index.tostring('str', 1) end),
		outcome(function() return mt.__index.tostring() end)
end)

local function run_cases(fast)
	T.eq(sock._fast_path(fast), fast)
	local results = {}
	for i, c in ipairs(cases) do
		local a, b = sock.socketpair()
		assert(a:send('hello world'))
		local buf, cbuf = sock.buffer(16), ffi.new('uint8_t[16]')
		results[i] = outcome(function() return c.f(a, b, buf, cbuf) end)
		a:close()
		b:close()
	end
	sock._fast_path(true)
	return results
end

T.test('the fast path is in use', function()
	T.eq(sock._fast_path(), true, 'lua/sock_ffi.lua did not install the fast path')
	local a, b = sock.socketpair()
	T.eq(b.recv == sock.tcp_class.recv, false, 'a socket finds the C recv')
	-- No call to the C API functions when the data is there: the classes'
	-- C recv, and the C send that is the twin of the class's send (sock.lua).
	local c_api = {[sock.tcp_class.recv] = 'recv', [sock.udp_class.recv] = 'recv',
	               [sock.raw_class.recv] = 'recv', [sock._twins[sock.tcp_class.send]] = 'send'}
	local calls = {}
	local function hook()
		local name = c_api[debug.getinfo(2, 'f').func]
		if name then calls[#calls + 1] = name end
	end
	local buf = sock.buffer(16)
	debug.sethook(hook, 'c')
	local ok1 = a:send('ping')
	local n = b:recv(buf)
	debug.sethook()
	T.eq(ok1, true)
	T.eq(n, 4)
	T.eq(table.concat(calls, ' '), '', 'calls through the C API')
	-- With the fast path off, the same calls reach the C functions: the hook sees them.
	sock._fast_path(false)
	debug.sethook(hook, 'c')
	a:send('ping')
	b:recv(buf)
	debug.sethook()
	sock._fast_path(true)
	T.eq(table.concat(calls, ' '), 'send recv')
	a:close()
	b:close()
end)

T.test('the fast path and the C API path give the same results and errors', function()
	T.paths_agree(cases, run_cases)
	assert(#cases > 80)
end)

T.plain('outside a thread both paths raise the same error', function()
	local a, b = sock.socketpair()
	a:close()
	local buf = sock.buffer(4)
	local r = {}
	for _, fast in ipairs{true, false} do
		sock._fast_path(fast)
		r[#r + 1] = outcome(function() return b:recv(buf) end)
		r[#r + 1] = outcome(function() return b:send('x') end)
	end
	sock._fast_path(true)
	T.eq(r[1], r[3])
	T.eq(r[2], r[4])
	assert(r[1]:find('inside a sock thread', 1, true), r[1])
	b:close()
end)

-- Enough round trips for the JIT to compile the loop (traces with the FFI
-- calls in them), every byte checked.
T.test('a compiled echo loop moves every byte', function()
	local a, b = sock.socketpair()
	local done = T.go(function()
		local buf = sock.buffer(64)
		while true do
			local n = b:recv(buf, 64, T.deadline())
			if not n or n == 0 then return true end
			assert(b:send(buf, n, T.deadline()))
		end
	end)
	local buf = ffi.new('uint8_t[64]')
	for i = 1, 3000 do
		local msg = ('%05d'):format(i):rep(8)
		assert(a:send(msg, nil, T.deadline()))
		local got = 0
		while got < #msg do
			local n = assert(a:recv(buf + got, #msg - got, T.deadline()))
			got = got + n
		end
		T.eq(ffi.string(buf, #msg), msg)
	end
	a:close()
	T.eq(done(), true)
	b:close()
end)

T.done()
