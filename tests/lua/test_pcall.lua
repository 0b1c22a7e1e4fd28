-- sock.pcall / sock.xpcall: protected calls whose function may wait (do I/O,
-- sleep) on every Lua version, 5.1 included, where plain pcall cannot yield.
-- On Lua 5.4 the <close> tests are loaded from close54.lua (other versions
-- cannot even parse it).
local T = require'testlib'
local sock = T.sock

T.test('sock.pcall returns true and every result of a function that waited', function()
	local a, b = assert(sock.socketpair())
	local ok, x, y, z = sock.pcall(function(p, q)
		assert(a:send('ping\n'))
		local line = b:readline(T.deadline())
		sock.sleep(0.001)
		return line, p + q, nil
	end, 1, 2)
	T.eq(ok, true)
	T.eq(x, 'ping')
	T.eq(y, 3)
	T.eq(z, nil)
	T.eq(select('#', sock.pcall(function() return 1, nil, nil end)), 4)
	a:close()
	b:close()
end)

T.test('sock.pcall catches an error raised after a wait', function()
	local ok, err = sock.pcall(function()
		sock.sleep(0.001)
		error('boom after waiting', 0)
	end)
	T.eq(ok, false)
	T.eq(err, 'boom after waiting')
	local obj = {}
	local ok2, err2 = sock.pcall(function() sock.sleep(0.001); error(obj) end)
	T.eq(ok2, false)
	T.eq(err2, obj)  -- error objects pass through untouched
end)

T.test('sock.xpcall applies the handler to an error after a wait, and passes arguments', function()
	local ok, msg = sock.xpcall(function(x)
		sock.sleep(0.001)
		error('bad ' .. x, 0)
	end, function(e) return 'handled: ' .. e end, 'input')
	T.eq(ok, false)
	T.eq(msg, 'handled: bad input')
	local ok2, r1, r2 = sock.xpcall(function(p, q) sock.sleep(0.001); return q, p end, debug.traceback, 'a', 'b')
	T.eq(ok2, true)
	T.eq(r1, 'b')
	T.eq(r2, 'a')
	local ok3, tb = sock.xpcall(function() sock.sleep(0.001); error('with trace') end, debug.traceback)
	T.eq(ok3, false)
	assert(tb:find('with trace', 1, true) and tb:find('traceback', 1, true), tb)
end)

T.test('nested protected calls, each with I/O', function()
	local a, b = assert(sock.socketpair())
	local ok, inner_ok, inner_err, after = sock.pcall(function()
		local iok, ierr = sock.pcall(function()
			assert(a:send('x'))
			T.eq(b:readn(1, T.deadline()), 'x')
			error('inner', 0)
		end)
		assert(a:send('y'))
		return iok, ierr, b:readn(1, T.deadline())
	end)
	T.eq(ok, true)
	T.eq(inner_ok, false)
	T.eq(inner_err, 'inner')
	T.eq(after, 'y')
	a:close()
	b:close()
end)

T.test('an error inside a wait keeps the socket usable', function()
	local a, b = assert(sock.socketpair())
	local ok, err = sock.pcall(function()
		local line, e = b:readline(sock.clock() + 0.02)
		error(e, 0)
	end)
	T.eq(ok, false)
	T.eq(err, 'timeout')
	assert(a:send('later\n'))
	T.eq(b:readline(T.deadline()), 'later')
	a:close()
	b:close()
end)

T.test('sock.pcall inside sock.cowrap inside a thread', function()
	local f = sock.cowrap(function(yield)
		local ok, v = sock.pcall(function()
			sock.sleep(0.001)
			yield('from inside')
			return 'value'
		end)
		return ok, v
	end)
	T.eq(f(), 'from inside')
	local ok, v = f()
	T.eq(ok, true)
	T.eq(v, 'value')
end)

T.test('a non-function is an error value, as with pcall', function()
	local ok, err = sock.pcall(42)
	T.eq(ok, false)
	assert(type(err) == 'string')
	local ok2 = sock.xpcall(nil, function(e) return e end)
	T.eq(ok2, false)
end)

T.plain('outside a thread sock.pcall works like pcall', function()
	local ok, v = sock.pcall(function(x) return x * 2 end, 21)
	T.eq(ok, true)
	T.eq(v, 42)
	local ok2, err = sock.pcall(error, 'plain', 0)
	T.eq(ok2, false)
	T.eq(err, 'plain')
	-- waiting outside a thread is an error the protected call catches
	local ok3, err3 = sock.pcall(sock.sleep, 0.001)
	T.eq(ok3, false)
	assert(tostring(err3):find('only inside a sock thread', 1, true), err3)
end)

if _VERSION == 'Lua 5.4' then
	local dir = (arg and arg[0] or ''):match('^(.*/)') or ''
	assert(loadfile(dir .. 'close54.lua'))(T)
end

T.done()
