-- Name lookups inside sock threads run on the resolver's worker threads and
-- do not block the loop; numeric hosts resolve inline; outside a thread
-- everything stays synchronous. A slow lookup is made deterministic by the
-- test hook sock._resolver_delay(seconds) (SOCK_TEST_RESOLVER_DELAY in the
-- environment does the same); 'localhost' comes from /etc/hosts.
local T = require'testlib'
local sock = T.sock


local go = T.go

-- Run f with the resolver's test delay set, restoring it after.
local function with_delay(seconds, f)
	local prev = sock._resolver_delay(seconds)
	local ok, err = sock.pcall(f)
	sock._resolver_delay(prev)
	assert(ok, err)
end

T.test('sock.addr resolves a host name inside a thread', function()
	local ai = assert(sock.addr('localhost', 80, 'tcp', 'inet'))
	T.eq(ai:tostring(), '127.0.0.1:80')
	T.eq(ai:family(), 'inet')
	T.eq(ai:type(), 'tcp')
	local sa = ai.addr
	T.eq(sa:port(), 80)
	local ai2 = assert(sock.addr('localhost', 'http', 'tcp', 'inet'))
	T.eq(ai2.addr:port(), 80)
end)

T.test('other threads keep running while a slow lookup is pending', function()
	with_delay(0.3, function()
		local a, b = assert(sock.socketpair())
		local ticks, stop = 0, false
		-- Two threads play ping-pong over a socketpair: every exchange needs
		-- the loop to turn (each side waits for the other).
		local ponger = go(function()
			local buf = sock.buffer(1)
			while b:recv(buf, 1, T.deadline()) == 1 do assert(b:send('y', nil, T.deadline())) end
		end)
		local pinger = go(function()
			local buf = sock.buffer(1)
			while not stop do
				assert(a:send('x', nil, T.deadline()))
				assert(a:recv(buf, 1, T.deadline()) == 1)
				ticks = ticks + 1
			end
			a:close()  -- ends the ponger
			return ticks
		end)
		local t0 = sock.clock()
		local ai = assert(sock.addr('localhost', 1, 'tcp', 'inet'))
		local took = sock.clock() - t0
		local seen = ticks
		stop = true
		pinger()
		ponger()
		T.eq(ai:tostring(), '127.0.0.1:1')
		assert(took >= 0.25, 'the lookup did not take the test delay: ' .. took)
		assert(seen >= 10, 'the loop was blocked during the lookup: ' .. seen .. ' ticks')
		b:close()
	end)
end)

T.test('numeric hosts resolve inline, without the resolver', function()
	with_delay(5, function()
		local t0 = sock.clock()
		assert(sock.addr('127.0.0.1', 1, 'tcp'))
		assert(sock.addr('::1', 1, 'tcp'))
		assert(sock.addr('*', 1, 'tcp'))
		assert(sock.addr(nil, 1, 'tcp'))
		assert(sock.addr('/tmp/x', nil, 'tcp', 'unix'))
		local ai, err = sock.addr('localhost', 1, 'tcp', nil, nil, 'numerichost')
		T.eq(ai, nil)
		assert(type(err) == 'string')
		assert(sock.clock() - t0 < 1)
		T.eq((sock._resolver_stats()), 0)
	end)
end)

T.test('lookups run in parallel on several workers', function()
	with_delay(0.2, function()
		local t0 = sock.clock()
		local waits = {}
		for i = 1, 4 do
			waits[i] = go(function() return sock.addr('localhost', i, 'tcp', 'inet') end)
		end
		for i = 1, 4 do T.eq(waits[i]():tostring(), '127.0.0.1:' .. i) end
		assert(sock.clock() - t0 < 0.7, 'lookups ran one after another')
	end)
end)

T.test('failed lookups return nil, err', function()
	local ai, err = sock.addr('localhost', 'no-such-service-xyz', 'tcp')
	T.eq(ai, nil)
	T.eq(err, 'service_not_found')
	ai, err = sock.addr('localhost', 80, 'tcp', 'inet6')  -- /etc/hosts has no ::1 for it here, or it does
	assert(ai or type(err) == 'string')
end)

T.test('socket methods take host names: connect, bind, listen, sendto', function()
	local l = assert(sock.tcp())
	assert(l:listen('localhost', 0))
	local port = l:getsockname():port()
	T.eq(l:getsockname():addr():tostring(), '127.0.0.1')
	local c = assert(sock.tcp())
	assert(c:bind('localhost', 0))
	assert(c:connect('localhost', port, T.deadline()))
	local a = assert(l:accept(T.deadline()))
	a:close()
	c:close()
	l:close()

	l = assert(sock.tcp())
	assert(l:listen(8, 'localhost', 0))  -- with a backlog first
	l:close()

	local u = assert(sock.udp())
	assert(u:bind('127.0.0.1', 0))
	local uport = u:getsockname():port()
	local v = assert(sock.udp())
	T.eq(v:sendto('localhost', uport, 'named'), 5)
	local buf = sock.buffer(8)
	T.eq(u:recv(buf, 8, T.deadline()), 5)
	T.eq(buf:tostring(1, 5), 'named')
	assert(v:connect('localhost', uport))
	u:close()
	v:close()
end)

T.test('a lookup shares the deadline of connect; the socket stays usable', function()
	local l, port = T.listener()
	with_delay(2, function()
		local c = assert(sock.tcp())
		local t0 = sock.clock()
		local ok, err = c:connect('localhost', port, sock.clock() + 0.1)
		T.eq(ok, nil)
		T.eq(err, 'timeout')
		assert(sock.clock() - t0 < 1.5, 'waited for the lookup past the deadline')
		local ok2, err2 = c:connect('localhost', port, sock.clock() - 1)
		T.eq(err2, 'timeout')
		assert(c:connect('127.0.0.1', port, T.deadline()))
		c:close()
		local u = assert(sock.udp())
		local n, uerr = u:sendto('localhost', port, 'x', nil, sock.clock() + 0.05)
		T.eq(uerr, 'timeout')
		u:close()
	end)
	local a = assert(l:accept(T.deadline()))
	a:close()
	l:close()
end)

T.test('closing a socket while its lookup is pending: closed, no crash', function()
	with_delay(0.2, function()
		local c = assert(sock.tcp())
		local wait = go(function() return c:connect('localhost', 9, T.deadline()) end)
		c:close()
		local ok, err = wait()
		T.eq(ok, nil)
		T.eq(err, 'closed')
	end)
end)

T.test('lookups inside sock.pcall and sock.cowrap', function()
	local ok, ai = sock.pcall(sock.addr, 'localhost', 7, 'tcp', 'inet')
	assert(ok, ai)
	T.eq(ai:tostring(), '127.0.0.1:7')
	local f = sock.cowrap(function(yield, port)
		local x = assert(sock.addr('localhost', port, 'tcp', 'inet'))
		yield(x:tostring())
		return 'done'
	end)
	T.eq(f(8), '127.0.0.1:8')
	T.eq(f(), 'done')
end)

T.test('bad arguments still raise with the right names', function()
	T.raises("bad argument #2 to 'addr'", sock.addr, 'localhost', {})
	T.raises("bad argument #2 to 'addr'", sock.addr, 'localhost', 70000)
	T.raises("bad argument #6 to 'addr'", sock.addr, 'localhost', 1, 'tcp', nil, nil, 'nope')
	local c = assert(sock.tcp())
	T.raises("bad argument #3 to 'connect'", c.connect, c, 'localhost', -1)
	T.raises("bad argument #4 to 'connect'", c.connect, c, 'localhost', 1, 'soon')
	T.raises("bad argument #3 to 'bind'", c.bind, c, 'localhost', {})
	T.raises("bad argument #2 to 'sendto'", c.sendto, c, {}, 1, 'x')
	c:close()
end)

T.plain('outside a thread, lookups stay synchronous and ignore the worker delay', function()
	local prev = sock._resolver_delay(5)
	local t0 = sock.clock()
	local ai = assert(sock.addr('localhost', 1, 'tcp', 'inet'))
	sock._resolver_delay(prev)
	T.eq(ai:tostring(), '127.0.0.1:1')
	assert(sock.clock() - t0 < 1)
	local s = assert(sock.tcp())
	assert(s:bind('localhost', 0))
	s:close()
end)

T.plain('a state closed while lookups are pending ends promptly', function()
	local lua = arg and arg[-1]
	if not lua then return end
	local script = [[
		local sock = require'sock'
		sock._resolver_delay(30)
		sock.thread(function() sock.addr('localhost', 1) end)
		sock.thread(function() sock.addr('localhost', 2) end)
		assert(sock._resolver_stats() == 2)
		-- the script ends: the interpreter closes the state with both lookups pending
	]]
	local t0 = os.time()
	if T.windows then  -- through cmd.exe, whose status os.execute cannot tell there
		local child = require'child'
		local status, out = child.shell(child.quote(lua) .. ' -e ' .. child.quote((script:gsub('%s+', ' '))))
		assert(status == 0, 'child failed (' .. tostring(status) .. '): ' .. out)
		assert(os.time() - t0 < 10, 'closing waited for the lookups')
		return
	end
	local cmd = ("%q -e %q"):format(lua, script:gsub('%s+', ' '))
	local ok, how, code = os.execute(cmd)
	if type(ok) == 'number' then code = ok; ok = code == 0 end  -- 5.1
	assert(ok == true or ok == 0, 'child failed: ' .. tostring(how) .. ' ' .. tostring(code))
	assert(os.time() - t0 < 10, 'closing waited for the lookups')
end)

T.done()
