-- Socket objects as luapower code uses them: tables of a class
-- (sock.tcp_class, udp_class, raw_class) that code can rawset into, whose
-- stored fields shadow the class's methods, and whose classes code extends.
local T = require'testlib'
local sock = T.sock

T.test('a socket is a table: rawset, rawget and stored fields work', function()
	local c, s = T.tcp_pair()
	T.eq(type(c), 'table')
	rawset(c, 'tag', 42)
	T.eq(rawget(c, 'tag'), 42)
	T.eq(c.tag, 42)
	c.other = 'x'
	T.eq(rawget(c, 'other'), 'x')
	c:close()
	s:close()
end)

T.test('a method overridden with rawset, as glue.override does, runs instead of the class\'s', function()
	local c, s = T.tcp_pair()
	local closed_by = {}
	local inherited = c.close
	rawset(c, 'close', function(self, ...)  -- luapower's http_client does this on every connection
		closed_by[#closed_by + 1] = 'override'
		return inherited(self, ...)
	end)
	-- a plain field shadows a method the same way
	s.send = function() return 'shadowed' end
	T.eq(s:send('x'), 'shadowed')
	s.send = nil  -- and the class's shows through again
	assert(s:send('x', nil, T.deadline()))
	T.eq(c:readn(1, T.deadline()), 'x')
	assert(c:close())
	T.eq(closed_by[1], 'override')
	T.eq(c:closed(), true)
	s:close()
end)

T.test('a method added to a class reaches every socket of that type, made before or after', function()
	local before = assert(sock.tcp())
	function sock.tcp_class:greeting() return 'tcp ' .. self:type() end
	local after = assert(sock.tcp())
	T.eq(before:greeting(), 'tcp tcp')
	T.eq(after:greeting(), 'tcp tcp')
	local u = assert(sock.udp())
	T.eq(u.greeting, nil)  -- not the udp class's
	sock.tcp_class.greeting = nil
	T.eq(before.greeting, nil)
	before:close()
	after:close()
	u:close()
	T.eq(type(sock.udp_class.sendto), 'function')
	T.eq(type(sock.raw_class.recv), 'function')
end)

T.test('a class built from tcp_class, as sock_libtls builds its own, drives a socket', function()
	local my_class = {}
	for k, v in pairs(sock.tcp_class) do my_class[k] = v end
	function my_class:send_line(line) return self:send(line .. '\n') end
	local c, s = T.tcp_pair()
	setmetatable(c, {__index = my_class})  -- a socket of the new class
	assert(c:send_line('hello'))
	T.eq(s:readline(T.deadline()), 'hello')
	assert(c:close())
	s:close()
end)

T.test('accepted sockets carry their addresses as fields', function()
	local c, s = T.tcp_pair()
	T.eq(s.remote_addr, '127.0.0.1')
	T.eq(s.remote_port, c:getsockname():port())
	T.eq(rawget(s, 'local_port'), s:getsockname():port())  -- stored in the object once read
	c:close()
	s:close()
end)

-- Issue 4 gives an idle connection 2 KiB for its socket and its thread;
-- Lua 5.4's share of it was 2,041 bytes in December 2026 (docs/benchmarks.md),
-- after it had crept up unnoticed. Lua's own count of a socket object's
-- memory (its table and userdata) is the same in every run of a build, so a
-- few more bytes in the socket make this fail, and whoever adds them must
-- weigh them against that budget (and raise the bound here if they fit).
-- The bounds are the sizes of 2026-12-07, for 64-bit builds.
local socket_object_bytes = T.windows and {
	['Lua 5.1'] = 928, ['Lua 5.2'] = 920, ['Lua 5.3'] = 912, ['Lua 5.4'] = 898, LuaJIT = 947,
} or {
	['Lua 5.1'] = 760, ['Lua 5.2'] = 752, ['Lua 5.3'] = 744, ['Lua 5.4'] = 730, LuaJIT = 775,
}

T.test('a socket object takes no more memory than it did (issue 4: 2 KiB per idle connection)', function()
	local n = 200
	local keep = {}
	for i = 1, 2 * n do keep[i] = false end  -- (its array made before counting)
	local first = {sock.socketpair()}  -- anything made on first use, made now
	local function bytes()
		collectgarbage()
		collectgarbage()
		return collectgarbage('count') * 1024
	end
	local before = bytes()
	for i = 1, n do keep[2 * i - 1], keep[2 * i] = assert(sock.socketpair()) end
	local per_object = (bytes() - before) / (2 * n)
	local bound = assert(socket_object_bytes[rawget(_G, 'jit') and 'LuaJIT' or _VERSION], _VERSION)
	assert(per_object <= bound + 4, ('a socket object takes %.1f bytes of Lua memory, more than the %d it took')
		:format(per_object, bound))
	assert(per_object > bound - 64, ('a socket object takes %.1f bytes, far below the bound of %d: lower it')
		:format(per_object, bound))
	for i = 1, 2 * n do keep[i]:close() end
	first[1]:close()
	first[2]:close()
end)

T.done()
