-- A small test harness shared by the Lua test files. Each test runs inside
-- its own sock.run with a watchdog, so a hang fails in seconds instead of
-- waiting for CTest's timeout; every file checks that it left no fd open.
--
--   local T = require'testlib'
--   T.test('name', function() ... end)   -- runs inside a sock thread
--   T.plain('name', function() ... end)  -- runs outside any thread
--   T.done()                             -- prints the tally, exits non-zero on failure
--
-- A test of a feature this system lacks is skipped, never passed: it is
-- counted apart and printed as "SKIP <file>: <name>: <reason>".
--
--   T.test('name', f, {skip = reason})    -- skipped when reason is not nil
--   T.test('name', f, T.not_on_windows('fork() is POSIX'))
--   T.skip_file(reason)                   -- the whole file: exit status 77
--                                           (CTest's SKIP_RETURN_CODE)
-- A file whose every test was skipped also ends with status 77.
local sock = require'sock'

local T = {}
local passed, failed, skipped = 0, 0, 0
local file = (arg and arg[0] or 'test'):match('([^/\\]+)%.lua$') or 'test'

T.sock = sock
T.WATCHDOG = 10  -- seconds any single test may take
T.file = file

-- Windows (the Windows interpreters, under Wine in this project's tests).
T.windows = package.config:sub(1, 1) == '\\'

-- Options that skip a test on Windows, with the reason: T.test(name, f,
-- T.not_on_windows('...')). Elsewhere nil: the test runs.
function T.not_on_windows(reason)
	if T.windows then return {skip = 'not on Windows: ' .. reason} end
	return nil
end

-- Options that skip a test which counts open fds/handles when this system
-- cannot count them (T.fd_count() is nil: Windows without a working
-- sock._handle_count; GetProcessHandleCount gives 0 under Wine 8).
function T.needs_fd_count()
	if T.fd_count() == nil then
		return {skip = 'this system cannot count the process\'s open handles (sock._handle_count)'}
	end
	return nil
end

-- Options that skip a test under Wine, with what Wine lacks (tested on
-- Windows itself, it would run).
function T.not_under_wine(reason)
	if T.wine then return {skip = 'not under Wine: ' .. reason} end
	return nil
end

-- Options that skip a test of unix-domain sockets where there are none:
-- Windows has AF_UNIX stream sockets since Windows 10 1803, but Wine 8's
-- Winsock has none. Only probed on Windows: on Linux they must work.
function T.needs_unix(datagram)
	if not T.windows then return nil end
	if datagram then return {skip = 'not on Windows: AF_UNIX datagram sockets (Windows has stream ones only)'} end
	if T._unix_probe == nil then
		local s, err = sock.tcp('unix')
		if s then s:close() end
		T._unix_probe = s and false or tostring(err)
	end
	if T._unix_probe then
		local wine = sock._under_wine and sock._under_wine()
		return {skip = 'AF_UNIX sockets are unavailable in this Winsock (' .. T._unix_probe
			.. (wine and ': Wine 8 has none)' or ')')}
	end
	return nil
end

-- Skip the whole file (it tests only what this system lacks). Exits with
-- 77, which CTest shows as "Skipped".
function T.skip_file(reason)
	print(('SKIP %s: %s'):format(file, reason))
	io.stdout:flush()
	os.exit(77)
end

-- A value as text, for outcomes.
function T.show(v)
	local t = type(v)
	if t == 'number' then return ('%.17g'):format(v) end
	if t == 'string' then return ('%q'):format(v) end
	if t == 'nil' or t == 'boolean' then return tostring(v) end
	return t
end
function T.pack(...) return {n = select('#', ...), ...} end

-- A call's outcome as text: its results or its error (with the position,
-- which must be the caller's line either way). The LuaJIT tests compare the
-- fast path's and the C API path's (test_jit_*).
function T.outcome(f)
	local r = T.pack(sock.pcall(f))
	local parts = {}
	for k = 1, r.n do parts[k] = T.show(r[k]) end
	return table.concat(parts, ', ')
end

-- Fail unless every case ({name=, f=, [expect=]}) has the same outcome with
-- the fast path on and off (run(fast) -> the outcomes, in order) and holds
-- its `expect` text when it has one; every case that does not is listed. A
-- Lua error of the case's own ('attempt to call ...': a bug in the test)
-- fails it too, though both paths would agree on it.
function T.paths_agree(cases, run)
	local fast, slow = run(true), run(false)
	local bad = {}
	for i, c in ipairs(cases) do
		if fast[i]:find('attempt to ', 1, true) then
			bad[#bad + 1] = ('%s: the case itself failed: %s'):format(c.name, fast[i])
		elseif fast[i] ~= slow[i] then
			bad[#bad + 1] = ('%s:\n  fast: %s\n  C:    %s'):format(c.name, fast[i], slow[i])
		elseif c.expect and not fast[i]:find(c.expect, 1, true) then
			bad[#bad + 1] = ('%s: %s lacks %s'):format(c.name, fast[i], c.expect)
		end
	end
	assert(#bad == 0, #bad .. ' case(s) wrong:\n' .. table.concat(bad, '\n'))
end

-- The TLS tests' certificates (tls-certs.sh's, beside these files, valid for
-- a day): in SOCK_TEST_CERT_DIR when it names a directory (the Windows tests
-- under Wine, where no sh or openssl command runs, get them from a CTest
-- fixture on the host), else made now. Returns their directory and one of
-- this run's own for what a test writes (nil on Windows); skips the file
-- when sock was built without TLS, and on Windows when nobody made them.
function T.tls_certs()
	if not sock._tls_available then T.skip_file('built without TLS') end
	local cert_dir = os.getenv('SOCK_TEST_CERT_DIR')
	if cert_dir == '' then cert_dir = nil end
	local dir
	if not T.windows then
		local function sh(cmd)
			local ok = os.execute(cmd)
			assert(ok == true or ok == 0, 'failed: ' .. cmd)
		end
		dir = T.tmpname()
		os.remove(dir)
		sh('mkdir -p ' .. dir)
		if not cert_dir then
			local here = (arg and arg[0] or ''):match('^(.*)/[^/]*$') or '.'
			sh('sh ' .. here .. '/tls-certs.sh ' .. dir)
			cert_dir = dir
		end
	elseif not cert_dir then
		T.skip_file('SOCK_TEST_CERT_DIR names no directory of certificates (tls-certs.sh, which needs sh and'
			.. ' the openssl command, makes them; CTest\'s fixture does it on the host)')
	end
	return cert_dir, dir
end

-- Open fds of this process, from /proc (Linux). Pipes are left out: the
-- listing itself runs through popen, whose pipe ends come and go while it runs.
-- On Windows: the process's handle count (sock._handle_count, a test hook
-- of the core), which counts every kernel handle, not only sockets; nil when
-- there is no way to count.
function T.fd_count()
	if T.windows then
		local n = sock._handle_count and sock._handle_count()
		if not n or n <= 0 then return nil end  -- 0: the system would not say (Wine 8)
		return n
	end
	local p = io.popen('for f in /proc/' .. T.pid() .. '/fd/*; do readlink "$f"; done')
	local n = 0
	for line in p:lines() do
		if not line:find('^pipe:') then n = n + 1 end
	end
	p:close()
	return n
end

-- This process's id, as a string (for names no other process uses). On
-- Windows, where the interpreters cannot ask, a string as unlikely to be
-- shared: the time and a heap address (randomized per process).
function T.pid()
	if not T._pid then
		if T.windows then
			T._pid = ('w%d%s'):format(os.time() % 100000, tostring({}):match('(%x+)$') or '')
		else
			local f = io.open('/proc/self/stat')  -- opened by us, so "self" is us
			T._pid = f:read('*l'):match('^(%d+)')
			f:close()
		end
	end
	return T._pid
end

-- The backend the test run was asked to use must be the one running. (This
-- also makes the poller, whose fd must not count as a leak.)
local required = os.getenv('SOCK_REQUIRE_BACKEND')
do
	local name, why = sock.backend()
	if required and name ~= required then
		io.stderr:write(('%s: backend %s was required but %s runs (%s)\n'):format(file, required, tostring(name), tostring(why)))
		os.exit(1)
	end
end

-- The kqueue backend on Linux: built on libkqueue, which emulates kqueue on
-- top of epoll. The few tests that meet a place where libkqueue behaves
-- unlike a kernel kqueue check this and say what differs.
do
	local f = not T.windows and io.open('/proc/sys/kernel/ostype')
	local os_name = f and f:read('*l')
	if f then f:close() end
	T.libkqueue = sock.backend() == 'kqueue' and os_name == 'Linux'
end

-- A Windows build running under Wine, whose wineserver, like libkqueue,
-- reads a socket's error with getsockopt(SO_ERROR) when the socket reports
-- one, which clears it: a reset that no waiting call received then reads as
-- the end of the stream (see test_differential's RESET_MAY_READ_AS_EOF).
T.wine = sock._under_wine ~= nil and sock._under_wine()
do
end

local fds_at_start = T.fd_count()
if fds_at_start == nil then
	print(('NOTE %s: no handle count on this system (sock._handle_count): the leak check is skipped'):format(file))
end

-- A skipped test: counted apart, with its reason on stdout.
function T.skip(name, reason)
	skipped = skipped + 1
	print(('SKIP %s: %s: %s'):format(file, name, tostring(reason)))
end

-- Inside a test: skip one part of it when `opts` (as T.not_on_windows or
-- T.needs_unix give) says so; returns whether it did.
--   if not T.skip_part('abstract names', T.not_on_windows('...')) then ... end
function T.skip_part(what, opts)
	if opts and opts.skip then
		T.skip(what, opts.skip)
		return true
	end
	return false
end

-- The third argument of T.test / T.plain: the watchdog's seconds, or a
-- table {watchdog = seconds, skip = reason}.
local function options(o)
	if type(o) == 'table' then return o.watchdog, o.skip end
	return o, nil
end

local function report(name, ok, err)
	if ok then
		passed = passed + 1
	else
		failed = failed + 1
		io.stderr:write(('FAIL %s: %s\n%s\n'):format(file, name, tostring(err)))
	end
end

local function traceback(err)
	return debug.traceback(tostring(err), 2)
end

-- Run f inside a sock thread; fail if it raises, if it (or a thread it
-- started) still waits after the watchdog's time, or if it never finishes.
function T.test(name, f, opts)
	local watchdog, skip = options(opts)
	if skip then return T.skip(name, skip) end
	local finished, ok, err = false, true, nil
	local limit = watchdog or T.WATCHDOG
	local co = sock.newthread(function()
		local okf, e = sock.xpcall(f, traceback)
		ok, err, finished = okf, e, true
	end)
	local okr, e = pcall(sock.resume, co)
	if not okr then ok, err, finished = false, e, true end
	local okp, e2 = pcall(sock.start, limit)
	if not okp and ok then ok, err = false, e2 end
	if ok and not finished then
		ok, err = false, 'timed out after ' .. limit .. 's (watchdog)'
	elseif ok and sock._waiting_count() > 0 then
		ok, err = false, sock._waiting_count() .. ' thread(s) still waiting after the test'
	end
	report(name, ok, err)
	if sock._waiting_count() > 0 then  -- cannot go on with a loop in that state
		T.done()
		os.exit(1)
	end
end

-- Run f outside any thread. opts: as T.test's ({skip = reason}).
function T.plain(name, f, opts)
	local _, skip = options(opts)
	if skip then return T.skip(name, skip) end
	local ok, err = xpcall(f, traceback)
	report(name, ok, err)
end

-- assert that f raises an error whose message contains `pattern` (plain text).
function T.raises(pattern, f, ...)
	local ok, err = sock.pcall(f, ...)  -- f may wait (5.1's pcall cannot)
	if ok then error('expected an error containing "' .. pattern .. '", got none', 2) end
	if not tostring(err):find(pattern, 1, true) then
		error('expected an error containing "' .. pattern .. '", got: ' .. tostring(err), 2)
	end
	return err
end

-- assert that f() raises an error whose message contains every given fragment.
function T.raises_all(f, ...)
	local ok, err = sock.pcall(f)
	assert(not ok, 'expected an error')
	err = tostring(err)
	for i = 1, select('#', ...) do
		local frag = select(i, ...)
		assert(err:find(frag, 1, true), 'error "' .. err .. '" lacks "' .. frag .. '"')
	end
end

-- Run f in a new thread now; the returned function waits (with a deadline)
-- for f to end and returns its results. No polling, no sleeps: the waiter
-- sleeps on a job that the thread wakes.
function T.go(f, ...)
	local job = sock.sleep_job()
	local res, waiting
	sock.thread(function(...)
		res = (function(...) return {n = select('#', ...), ...} end)(f(...))
		if waiting then job:wakeup() end
	end, ...)
	return function()
		if not res then
			waiting = true
			job:sleep(T.WATCHDOG)
		end
		assert(res, 'thread did not finish in time')
		return (table.unpack or unpack)(res, 1, res.n)
	end
end

-- Wait (inside a thread) until `n` things have called done(), or `secs`
-- pass; l.wait returns whether all did. No polling: a sleep job woken by the last.
function T.latch(n)
	local job = sock.sleep_job()
	local l = {}
	function l.done()
		n = n - 1
		if n == 0 then job:wakeup() end
	end
	function l.wait(secs)
		if n > 0 then job:sleep(secs or 5) end
		return n == 0
	end
	return l
end

-- A temporary file's name, as os.tmpname: made empty, removed by the
-- caller. On Windows in %TEMP%: the C runtime's tmpnam names a file in the
-- root of the current drive (under Wine: the host's /).
function T.tmpname()
	if not T.windows then return os.tmpname() end
	T._tmpn = (T._tmpn or 0) + 1
	local dir = os.getenv('TEMP') or os.getenv('TMP') or '.'
	local p = ('%s\\sock-%s-%d.tmp'):format(dir, T.pid(), T._tmpn)
	assert(io.open(p, 'wb')):close()
	return p
end

-- A unix socket path in the temp directory (removed by the caller).
function T.tmppath()
	if T.windows then
		-- os.tmpname gives a name in the drive's root there
		T._tmpn = (T._tmpn or 0) + 1
		local dir = os.getenv('TEMP') or os.getenv('TMP') or '.'
		return ('%s\\sock-%s-%d.sock'):format(dir, T.pid(), T._tmpn)
	end
	local p = os.tmpname()
	os.remove(p)
	return p .. '.sock'
end

function T.eq(a, b, msg)
	if a ~= b then
		error((msg and msg .. ': ' or '') .. 'expected ' .. tostring(b) .. ', got ' .. tostring(a), 2)
	end
end

-- A deadline `s` seconds from now (default 5): every I/O in tests has one.
function T.deadline(s)
	return sock.clock() + (s or 5)
end

-- A listening TCP socket on 127.0.0.1 and its port.
function T.listener(host, family)
	local s = assert(sock.tcp(family))
	assert(s:setopt('reuseaddr', true))
	assert(s:listen(host or '127.0.0.1', 0))
	return s, s:getsockname():port()
end

-- A connected pair of TCP sockets over loopback: client, server side.
function T.tcp_pair()
	local l, port = T.listener()
	local c = assert(sock.tcp())
	assert(c:connect('127.0.0.1', port, T.deadline()))
	-- the handshake is complete once connect returns: the backlog holds it
	local server = assert(l:accept(T.deadline()))
	l:close()
	return c, server
end

function T.done()
	collectgarbage()
	collectgarbage()
	local fds = fds_at_start and T.fd_count()
	if fds and fds ~= fds_at_start then
		failed = failed + 1
		io.stderr:write(('FAIL %s: %s leak: %d open at start, %d at end\n'):format(file,
			T.windows and 'handle' or 'fd', fds_at_start, fds))
	end
	if skipped > 0 then
		print(('%s: %d passed, %d failed, %d skipped'):format(file, passed, failed, skipped))
	else
		print(('%s: %d passed, %d failed'):format(file, passed, failed))
	end
	-- Not os.exit: ending the script closes the Lua state, so the sanitizer
	-- build sees every finalizer run.
	if failed > 0 then error(failed .. ' test(s) failed', 0) end
	if passed == 0 and skipped > 0 then  -- nothing ran: not a pass
		io.stdout:flush()
		os.exit(77)
	end
end

return T
