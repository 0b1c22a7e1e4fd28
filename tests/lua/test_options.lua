-- s:setopt / s:getopt: names as luapower spells them and with prefixes, value
-- conversions both ways, and the errors for user mistakes.
local T = require'testlib'
local sock = T.sock
local test, eq, raises = T.plain, T.eq, T.raises_all

-- Runs f with a fresh socket and always closes it.
local function with(make, f)
	local s = assert(make())
	local ok, err = pcall(f, s)
	s:close()
	if not ok then error(err, 0) end
end
local function tcp() return sock.tcp() end
local function tcp6() return sock.tcp('inet6') end
local function udp() return sock.udp() end

test('boolean options, luapower and so_ spellings', function()
	with(tcp, function(s)
		eq(s:getopt('reuseaddr'), false)
		eq(s:setopt('reuseaddr', true), true)
		eq(s:getopt('reuseaddr'), true)
		eq(s:getopt('so_reuseaddr'), true)
		eq(s:getopt('SO_REUSEADDR'), true)
		eq(s:setopt('so_reuseaddr', false), true)
		eq(s:getopt('reuseaddr'), false)

		eq(s:setopt('tcp_nodelay', true), true)
		eq(s:getopt('tcp_nodelay'), true)
		eq(s:getopt('nodelay'), true)
		eq(s:setopt('nodelay', 0), true) -- numbers: 0 is false
		eq(s:getopt('tcp_nodelay'), false)

		if not T.skip_part('so_reuseport', T.not_on_windows('SO_REUSEPORT is Linux\'s and the BSDs\'')) then
			eq(s:setopt('reuseport', true), true)
			eq(s:getopt('so_reuseport'), true)
		end
		eq(s:setopt('oobinline', 1), true)
		eq(s:getopt('oobinline'), true)
		eq(s:getopt('acceptconn'), false)
	end)
end)

test('keepalive family', function()
	with(tcp, function(s)
		eq(s:setopt('keepalive', true), true)
		eq(s:getopt('so_keepalive'), true)
		if T.skip_part('tcp_keepidle, tcp_keepintvl, tcp_keepcnt',
			T.not_under_wine('Wine 8 refuses TCP_KEEPALIVE/KEEPINTVL/KEEPCNT (WSAENOPROTOOPT)')) then
			return
		end
		eq(s:setopt('tcp_keepidle', 30), true)
		eq(s:setopt('tcp_keepintvl', 5), true)
		eq(s:setopt('keepcnt', 3), true)
		eq(s:getopt('tcp_keepidle'), 30)
		eq(s:getopt('keepintvl'), 5)
		eq(s:getopt('tcp_keepcnt'), 3)
		local ok, err = s:setopt('tcp_keepidle', 0) -- the kernel refuses 0
		eq(ok, nil)
		eq(err, 'invalid_argument')
	end)
end)

test('buffer sizes', function()
	with(tcp, function(s)
		eq(s:setopt('rcvbuf', 65536), true)
		assert(s:getopt('rcvbuf') >= 65536) -- Linux doubles it
		eq(s:setopt('so_sndbuf', 32768), true)
		assert(s:getopt('sndbuf') >= 32768)
		eq(math.type and math.type(s:getopt('rcvbuf')) or 'integer', 'integer')
	end)
end)

test('linger: seconds, 0 for reset, false/nil for off', function()
	with(tcp, function(s)
		eq(s:getopt('linger'), false)
		eq(s:setopt('linger', 0), true)
		eq(s:getopt('linger'), 0)
		eq(s:getopt('so_linger'), 0)
		eq(s:setopt('so_linger', 5), true)
		eq(s:getopt('linger'), 5)
		eq(s:setopt('linger', 0.5), true) -- fractions round up, never to a reset
		eq(s:getopt('linger'), 1)
		eq(s:setopt('linger', false), true)
		eq(s:getopt('linger'), false)
		eq(s:setopt('linger', 3), true)
		eq(s:setopt('linger', nil), true)
		eq(s:getopt('linger'), false)
		raises(function() s:setopt('linger', true) end, "#3", "'setopt'", 'so_linger')
		raises(function() s:setopt('linger', -1) end, "#3", 'out of range')
	end)
end)

test('timeouts in seconds', function()
	with(tcp, function(s)
		eq(s:setopt('rcvtimeo', 1.5), true)
		local t = s:getopt('so_rcvtimeo')
		assert(math.abs(t - 1.5) < 0.01, t)
		eq(s:setopt('sndtimeo', 0), true)
		eq(s:getopt('sndtimeo'), 0)
		local ok, err = s:setopt('sndtimeo', -1)
		eq(ok, nil)
		eq(err, 'invalid_argument')
	end)
end)

test('read-only options', function()
	with(tcp, function(s)
		eq(select('#', s:getopt('error')), 1) -- a lone nil: no pending error
		eq(s:getopt('so_error'), nil)
		eq(s:getopt('type'), 'tcp')
		if not T.skip_part('so_domain', T.not_on_windows('SO_DOMAIN is Linux\'s')) then
			eq(s:getopt('so_domain'), 'inet')
		end
		if not T.skip_part('so_protocol', T.not_on_windows('Winsock has no SO_PROTOCOL')) then
			eq(s:getopt('so_protocol'), 'tcp')
		end
		raises(function() s:setopt('error', 1) end, "bad argument #2 to 'setopt'", 'read-only')
		raises(function() s:setopt('so_type', 1) end, 'read-only')
	end)
	with(udp, function(s)
		eq(s:getopt('so_type'), 'udp')
		if not T.windows then eq(s:getopt('protocol'), 'udp') end  -- (no SO_PROTOCOL: above)
	end)
end)

test('v6only on an inet6 socket', function()
	with(tcp6, function(s)
		if not T.skip_part('so_domain of an inet6 socket', T.not_on_windows('SO_DOMAIN is Linux\'s')) then
			eq(s:getopt('so_domain'), 'inet6')
		end
		eq(s:setopt('ipv6_v6only', true), true)
		eq(s:getopt('v6only'), true)
		eq(s:setopt('v6only', false), true)
		eq(s:getopt('ipv6_v6only'), false)
		eq(s:setopt('ipv6_unicast_hops', 9), true)
		eq(s:getopt('unicast_hops'), 9)
	end)
end)

test('ip options and multicast', function()
	with(udp, function(s)
		eq(s:setopt('ip_ttl', 42), true)
		eq(s:getopt('ttl'), 42)
		eq(s:setopt('broadcast', true), true)
		eq(s:getopt('broadcast'), true)
		eq(s:setopt('ip_multicast_ttl', 3), true)
		eq(s:getopt('multicast_ttl'), 3)
		eq(s:setopt('ip_multicast_loop', false), true)
		eq(s:getopt('ip_multicast_loop'), false)
		eq(s:setopt('ip_multicast_if', '127.0.0.1'), true)
		eq(s:getopt('ip_multicast_if'), '127.0.0.1')
		local ok, err = s:setopt('ip_multicast_if', 'no-such-if0')
		eq(ok, nil)
		eq(err, 'no_such_device')

		-- loopback may or may not carry multicast here; the call must be well-formed
		ok, err = s:setopt('ip_add_membership', {group = '239.1.2.3', interface = 'lo'})
		assert(ok == true or type(err) == 'string')
		if ok then eq(s:setopt('ip_drop_membership', {group = '239.1.2.3', interface = 'lo'}), true) end
		ok, err = s:setopt('ip_add_membership', '239.1.2.4')
		assert(ok == true or type(err) == 'string')
		ok, err = s:setopt('ip_add_membership', 'not-an-address')
		eq(ok, nil)
		eq(err, 'invalid_argument')
		ok, err = s:setopt('ip_add_membership', {group = '239.1.2.5', interface = 'no-such-if0'})
		eq(ok, nil)
		eq(err, 'no_such_device')

		raises(function() s:setopt('ip_add_membership', 5) end, "#3", 'ip_add_membership')
		raises(function() s:setopt('ip_add_membership', {}) end, "#3", "'group'")
		raises(function() s:setopt('ip_add_membership', {group = '239.1.2.3', interface = {}}) end,
			"#3", "'interface'")
		raises(function() s:setopt('ip_add_source_membership', {group = '232.1.1.1'}) end,
			"#3", "'source'")
		raises(function() s:getopt('ip_add_membership') end, "#2", 'write-only')
	end)
end)

test('string options', function()
	with(tcp, function(s)
		local cc = s:getopt('tcp_congestion')
		eq(type(cc), 'string')
		assert(#cc > 0)
		eq(s:setopt('congestion', cc), true)
		local ok, err = s:setopt('bindtodevice', 'no-such-if0')
		eq(ok, nil)
		assert(err == 'no_such_device' or err == 'access_denied', err)
		raises(function() s:setopt('bindtodevice', 5) end, "#3", 'string expected')
	end)
end, T.not_on_windows('TCP_CONGESTION and SO_BINDTODEVICE are Linux\'s'))

test('unknown, ambiguous and mistyped names raise', function()
	with(tcp, function(s)
		raises(function() s:setopt('xyz', true) end,
			"bad argument #2 to 'setopt' (unknown socket option 'xyz')")
		raises(function() s:getopt('xyz') end,
			"bad argument #2 to 'getopt' (unknown socket option 'xyz')")
		raises(function() s:getopt('multicast_loop') end, "#2", 'ambiguous',
			'ip_multicast_loop', 'ipv6_multicast_loop')
		raises(function() s:setopt(5, true) end, "#2", "'setopt'")
		raises(function() s:getopt() end, "#2", "'getopt'")
		raises(function() s:setopt('reuseaddr', 'yes') end, "#3", "'setopt'", 'boolean expected')
		raises(function() s:setopt('reuseaddr') end, "#3", 'boolean expected')
		raises(function() s:setopt('rcvbuf', 'big') end, "#3", 'integer expected')
		raises(function() s:setopt('rcvbuf', 1.5) end, "#3", 'integer')
		raises(function() s:setopt('rcvtimeo', '1') end, "#3", 'seconds')
	end)
end)

test('peer credentials of a unix socket pair', function()
	if not sock.socketpair then return end
	local a, b = sock.socketpair()
	if not a then return end
	local cred = a:getopt('so_peercred')
	a:close()
	b:close()
	eq(type(cred), 'table')
	eq(type(cred.pid), 'number')
	assert(cred.pid > 0)
	eq(type(cred.uid), 'number')
	eq(type(cred.gid), 'number')
end, T.not_on_windows('SO_PEERCRED is Linux\'s'))

test('options on a closed socket', function()
	local s = sock.tcp()
	s:close()
	local ok, err = s:setopt('reuseaddr', true)
	eq(ok, nil)
	eq(err, 'closed')
	ok, err = s:getopt('reuseaddr')
	eq(ok, nil)
	eq(err, 'closed')
end)

T.done()
