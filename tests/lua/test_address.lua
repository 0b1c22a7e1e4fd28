-- sock.addr and its ai / sa / ip objects, and the inet_* / is_ipv* / if_*
-- helpers. Numeric hosts only: no test depends on DNS.
local T = require'testlib'
local sock = T.sock
local test, eq, raises = T.plain, T.eq, T.raises_all

test('inet tcp address', function()
	local ai = assert(sock.addr('127.0.0.1', 80, 'tcp'))
	eq(ai:family(), 'inet')
	eq(ai:type(), 'tcp')
	eq(ai:protocol(), 'tcp')
	eq(ai:tostring(), '127.0.0.1:80')
	eq(tostring(ai), '127.0.0.1:80')
	eq(ai:next(), nil)
	eq(ai:name(), nil)
	local sa = ai.addr
	eq(sa:family(), 'inet')
	eq(sa:port(), 80)
	eq(sa:tostring(), '127.0.0.1:80')
	eq(tostring(sa), '127.0.0.1:80')
	local ip = sa:addr()
	eq(ip:tostring(), '127.0.0.1')
	eq(tostring(ip), '127.0.0.1')
	eq(ip:family(), 'inet')
	local bin, len = ip:tobinary()
	eq(bin, '\127\0\0\1')
	eq(len, 4)
end)

test('inet6 addresses format canonically', function()
	local ai = assert(sock.addr('::1', 443, 'tcp', 'inet6'))
	eq(ai:family(), 'inet6')
	eq(ai:tostring(), '[::1]:443')
	eq(ai.addr:tostring(), '[::1]:443')
	eq(ai.addr:addr():tostring(), '::1')
	local bin, len = ai.addr:addr():tobinary()
	eq(len, 16)
	eq(#bin, 16)
	eq(bin, ('\0'):rep(15) .. '\1')
	local ai2 = assert(sock.addr('2001:0DB8:0:0::1', 8080, 'udp'))
	eq(ai2:family(), 'inet6')
	eq(ai2:type(), 'udp')
	eq(ai2:protocol(), 'udp')
	eq(ai2:tostring(), '[2001:db8::1]:8080')
	eq(ai2.addr:addr():tostring(), '2001:db8::1')
end)

test("'*' and nil mean all interfaces", function()
	eq(sock.addr('*', 0, 'tcp', 'inet'):tostring(), '0.0.0.0:0')
	eq(sock.addr('*', 1234, 'tcp', 'inet6'):tostring(), '[::]:1234')
	eq(sock.addr('*', 5, 'tcp'):tostring(), '0.0.0.0:5')
	eq(sock.addr(nil, 6, 'udp'):tostring(), '0.0.0.0:6')
	eq(sock.addr(nil, nil, 'tcp'):tostring(), '0.0.0.0:0')
	eq(sock.addr('127.0.0.1'):tostring(), '127.0.0.1:0')
end)

test('ports: numbers, numeric strings and service names', function()
	eq(sock.addr('127.0.0.1', '8080', 'tcp').addr:port(), 8080)
	eq(sock.addr('127.0.0.1', 65535, 'tcp').addr:port(), 65535)
	eq(sock.addr('127.0.0.1', 0, 'tcp').addr:port(), 0)
	local f = io.open('/etc/services')
	if f then
		f:close()
		local ai = sock.addr('127.0.0.1', 'http', 'tcp')
		if ai then eq(ai.addr:port(), 80) end
	end
	local ai, err = sock.addr('127.0.0.1', 'no-such-service-xyz', 'tcp')
	eq(ai, nil)
	eq(err, 'service_not_found')
end)

test('an ai is passed through', function()
	local ai = sock.addr('127.0.0.1', 1, 'tcp')
	assert(rawequal(sock.addr(ai), ai))
	assert(rawequal(sock.addr(ai, 99, 'udp'), ai))
end)

test('an sa turns into a one-entry ai', function()
	local sa = sock.addr('127.0.0.1', 7, 'udp').addr
	local ai = assert(sock.addr(sa))
	eq(ai:tostring(), '127.0.0.1:7')
	eq(ai:family(), 'inet')
	eq(ai:next(), nil)
end)

test('no socket type: one entry per type, iterated by addrs()', function()
	local ai = assert(sock.addr('127.0.0.1', 0))
	local types, n = {}, 0
	for a in ai:addrs() do
		n = n + 1
		types[a:type()] = true
		eq(a:tostring(), '127.0.0.1:0')
	end
	-- Windows' getaddrinfo gives one entry, of no socket type, where
	-- glibc's gives one per type.
	if T.windows then
		eq(n, 1)
		return
	end
	assert(n >= 2, 'expected several entries')
	assert(types.tcp and types.udp)
	local second = ai:next()
	assert(second)
	eq(second:tostring(), '127.0.0.1:0')
end)

test('flags: string, list, set, number', function()
	assert(sock.addr('127.0.0.1', 1, 'tcp', nil, nil, 'passive'))
	assert(sock.addr('127.0.0.1', 1, 'tcp', nil, nil, {'passive', 'numerichost', 'numericserv'}))
	assert(sock.addr('127.0.0.1', 1, 'tcp', nil, nil, {passive = true, addrconfig = false}))
	assert(sock.addr('127.0.0.1', 1, 'tcp', nil, nil, 0))
	assert(sock.addr('127.0.0.1', 1, 'tcp', nil, nil, {}))
	local ai = assert(sock.addr('127.0.0.1', 1, 'tcp', nil, nil, 'cannonname'))
	local name = ai:name()
	assert(name == nil or type(name) == 'string')
	assert(sock.addr('127.0.0.1', 1, 'tcp', nil, nil, {'canonname', 'all', 'v4mapped'}))
	raises(function() sock.addr('127.0.0.1', 1, 'tcp', nil, nil, 'xyz') end,
		"bad argument #6 to 'addr'", "unknown flag 'xyz'")
	raises(function() sock.addr('127.0.0.1', 1, 'tcp', nil, nil, {'passive', 'nope'}) end,
		"#6", "unknown flag 'nope'")
	raises(function() sock.addr('127.0.0.1', 1, 'tcp', nil, nil, {1}) end, "#6", "'addr'")
	raises(function() sock.addr('127.0.0.1', 1, 'tcp', nil, nil, true) end, "#6", "'addr'")
	raises(function() sock.addr('127.0.0.1', 1, 'tcp', nil, nil, -1) end, "#6")
end)

test('v4mapped turns an IPv4 literal into inet6', function()
	local ai = assert(sock.addr('127.0.0.1', 9, 'tcp', 'inet6', nil, 'v4mapped'))
	eq(ai:family(), 'inet6')
	eq(ai:tostring(), '[::ffff:127.0.0.1]:9')
end)

test('socket types, families and protocols by name or number', function()
	eq(sock.addr('127.0.0.1', 1, 0, 0, 0):family(), 'inet')
	eq(sock.addr('127.0.0.1', 1, 'udp', 'inet', 'udp'):type(), 'udp')
	local raw = assert(sock.addr('127.0.0.1', 0, 'raw', 'inet', 'icmp'))
	eq(raw:type(), 'raw')
	eq(raw:protocol(), 'icmp')
	eq(sock.addr('127.0.0.1', 0, 'raw'):protocol(), 'raw')
	raises(function() sock.addr('127.0.0.1', 1, 'xyz') end, "#3", "'addr'", "unknown socket type 'xyz'")
	raises(function() sock.addr('127.0.0.1', 1, 'tcp', 'ipx') end, "#4", "unknown address family 'ipx'")
	raises(function() sock.addr('127.0.0.1', 1, 'tcp', nil, 'sctp') end, "#5", "unknown protocol 'sctp'")
	raises(function() sock.addr('127.0.0.1', 1, {}) end, "#3", "'addr'")
	raises(function() sock.addr('127.0.0.1', 1, 'tcp', 2.5) end, "#4", "integer")
end)

test('resolve failures return nil, normalized error', function()
	local ai, err = sock.addr('not a host', 80, 'tcp', nil, nil, 'numerichost')
	eq(ai, nil)
	eq(err, 'host_not_found')
	ai, err = sock.addr('127.0.0.1', 80, 'tcp', 'inet6')
	eq(ai, nil)
	eq(err, 'address_family_not_supported')
	ai, err = sock.addr('::1', 80, 'tcp', 'inet')
	eq(ai, nil)
	eq(err, 'address_family_not_supported')
end)

test('bad host and port arguments raise', function()
	raises(function() sock.addr({}, 80) end, "bad argument #1 to 'addr'", 'got table')
	raises(function() sock.addr(true, 80) end, "#1", "'addr'")
	raises(function() sock.addr('127.0.0.1', 70000) end, "#2", 'port out of range')
	raises(function() sock.addr('127.0.0.1', -1) end, "#2", 'port out of range')
	raises(function() sock.addr('127.0.0.1', 1.5) end, "#2", 'integer')
	raises(function() sock.addr('127.0.0.1', {}) end, "#2", "'addr'")
	raises(function() sock.addr('127.0.0.1\0evil', 1) end, "#1", 'zero byte')
end)

test('unix paths and abstract names', function()
	local ai = assert(sock.addr('/tmp/sock-test.sock', nil, 'tcp', 'unix'))
	eq(ai:family(), 'unix')
	eq(ai:type(), 'tcp')
	eq(ai:tostring(), '/tmp/sock-test.sock')
	eq(ai.addr:family(), 'unix')
	eq(ai.addr:port(), nil)
	eq(ai.addr:addr(), '/tmp/sock-test.sock')
	eq(tostring(ai.addr), '/tmp/sock-test.sock')
	local too_long, err = sock.addr('/' .. ('x'):rep(200), nil, 'tcp', 'unix')
	eq(too_long, nil)
	eq(err, 'name_too_long')
	raises(function() sock.addr(42, nil, 'tcp', 'unix') end, "#1", "'addr'")
end)

test('abstract unix names: @name and \\0name', function()
	eq(sock.addr('@abstract', 0, 'udp', 'unix'):tostring(), '@abstract')
	eq(sock.addr('\0abstract', 0, 'udp', 'unix'):tostring(), '@abstract')
end, T.not_on_windows('abstract unix socket names are Linux\'s'))

test('sa and ip compare by value', function()
	local a = sock.addr('127.0.0.1', 80, 'tcp').addr
	local b = sock.addr('127.0.0.1', 80, 'udp').addr
	local c = sock.addr('127.0.0.1', 81, 'tcp').addr
	assert(a == b)
	assert(a ~= c)
	assert(a:addr() == c:addr())
	assert(a:addr() ~= sock.addr('::1', 80, 'tcp').addr:addr())
end)

test('ai:free() and later use', function()
	local ai = assert(sock.addr('127.0.0.1', 0))
	local second = ai:next() or assert(T.windows and ai)  -- (one entry on Windows: see above)
	local sa = ai.addr
	local ip = sa:addr()
	ai:free()
	ai:free() -- twice is harmless
	raises(function() ai:family() end, 'freed')
	raises(function() ai:next() end, 'freed')
	raises(function() return ai.addr end, 'freed')
	raises(function() ai:addrs() end, 'freed')
	raises(function() second:tostring() end, 'freed')
	eq(tostring(ai), 'ai (freed)')
	-- sa and ip are copies: they outlive the list
	eq(sa:tostring(), '127.0.0.1:0')
	eq(ip:tostring(), '127.0.0.1')
	-- a freed ai is refused where an address is expected
	raises(function() sock.addr(second, nil) end, 'freed')
end)

test('methods check their object', function()
	local ai = sock.addr('127.0.0.1', 1, 'tcp')
	local sa = ai.addr
	local ip = sa:addr()
	raises(function() ai.family(sa) end, "'family'", 'ai expected')
	raises(function() sa.port(ai) end, "'port'", 'sa expected')
	raises(function() ip.tobinary('x') end, "'tobinary'", 'ip expected')
	eq(ai.nosuchfield, nil)
end)

test('many lists are collected', function()
	for i = 1, 2000 do
		local ai = sock.addr('127.0.0.1', i % 65536)
		local n = ai:next() or ai  -- (one entry on Windows)
		local s = n.addr
		if i % 3 == 0 then ai:free() end
	end
	collectgarbage()
	collectgarbage()
end)

test('inet_pton / inet_ntop', function()
	eq(sock.inet_pton('inet', '127.0.0.1'), '\127\0\0\1')
	eq(#sock.inet_pton('inet6', '::1'), 16)
	eq(sock.inet_ntop('inet', '\10\0\0\1'), '10.0.0.1')
	eq(sock.inet_ntop('inet6', sock.inet_pton('inet6', '2001:DB8:0::1')), '2001:db8::1')
	eq(sock.inet_ntop('inet6', sock.inet_pton('inet6', '::')), '::')
	local v, err = sock.inet_pton('inet', '1.2.3')
	eq(v, nil)
	eq(err, 'invalid_address')
	v, err = sock.inet_pton('inet6', '1.2.3.4')
	eq(v, nil)
	eq(err, 'invalid_address')
	v, err = sock.inet_ntop('inet', 'abc')
	eq(v, nil)
	eq(err, 'invalid_address')
	raises(function() sock.inet_pton('unix', '/x') end, "'inet_pton'", "'inet' or 'inet6'")
	raises(function() sock.inet_pton('ipx', '1.2.3.4') end, "#1", "'inet_pton'")
	raises(function() sock.inet_pton(nil, '1.2.3.4') end, "#1", "'inet_pton'")
	raises(function() sock.inet_pton('inet', 42) end, "#2", "'inet_pton'", 'string expected')
	raises(function() sock.inet_ntop('inet') end, "#2", "'inet_ntop'")
end)

test('is_ipv4 is strict, is_ipv6', function()
	eq(sock.is_ipv4('127.0.0.1'), true)
	eq(sock.is_ipv4('255.255.255.255'), true)
	eq(sock.is_ipv4('1.2.3'), false)
	eq(sock.is_ipv4('01.2.3.4'), false)
	eq(sock.is_ipv4('256.1.1.1'), false)
	eq(sock.is_ipv4('1.2.3.4.5'), false)
	eq(sock.is_ipv4(' 1.2.3.4'), false)
	eq(sock.is_ipv4('::1'), false)
	eq(sock.is_ipv4(nil), false)
	eq(sock.is_ipv4(1234), false)
	eq(sock.is_ipv6('::1'), true)
	eq(sock.is_ipv6('2001:db8::1'), true)
	eq(sock.is_ipv6('::ffff:1.2.3.4'), true)
	eq(sock.is_ipv6('1.2.3.4'), false)
	eq(sock.is_ipv6('2001:db8::1::'), false)
	eq(sock.is_ipv6({}), false)
end)

test('if_nametoindex / if_indextoname', function()
	-- the loopback interface: "lo" on Linux; on Windows its name comes from
	-- its LUID ("loopback_0"; Wine: "loopback_1") and its index is 1
	local lo_name = 'lo'
	if T.windows then
		lo_name = assert(sock.if_indextoname(1))
		assert(lo_name:find('^loopback_%d+$'), 'interface 1 is ' .. lo_name .. ', not the loopback')
	end
	local lo = assert(sock.if_nametoindex(lo_name))
	assert(lo > 0)
	eq(sock.if_indextoname(lo), lo_name)
	local v, err = sock.if_nametoindex('no-such-if0')
	eq(v, nil)
	eq(err, 'no_such_device')
	v, err = sock.if_indextoname(0)
	eq(v, nil)
	eq(err, 'no_such_device')
	v, err = sock.if_indextoname(999999)
	eq(v, nil)
	eq(err, 'no_such_device')
	raises(function() sock.if_nametoindex(1) end, "#1", "'if_nametoindex'")
	raises(function() sock.if_indextoname('lo') end, "#1", "'if_indextoname'")
	raises(function() sock.if_indextoname(1.5) end, "#1", "'if_indextoname'")
end)

T.done()
