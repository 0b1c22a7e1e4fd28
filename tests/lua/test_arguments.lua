-- Arguments: what a wrong one raises and where (the caller's line, never a
-- line of sock's own Lua half), no wrong type taken for something else, and
-- the answers of calls whose arguments were right but whose result was not
-- (an error name for every errno, a lookup out of fds, a UDP connect
-- outside threads, SIGPIPE around sendfile).
local T = require'testlib'
local child = require'child'
local sock = T.sock

local THIS_FILE = 'test_arguments.lua'

-- The line this is called on.
local function here()
	return debug.getinfo(2, 'l').currentline
end

-- Assert that f raises an error containing `pattern` that is positioned at
-- this file's `line`. (f must call the function it tests in a statement of
-- its own, not in a tail call, which would leave no frame of this file.)
local function raises_at(line, pattern, f)
	local err = T.raises(pattern, f)
	local where = THIS_FILE .. ':' .. line .. ':'
	if not err:find(where, 1, true) then
		error('expected the error at ' .. where .. ' got: ' .. err, 2)
	end
	return err
end

-- Linux's MSG_* values. Windows has neither MSG_DONTWAIT nor MSG_NOSIGNAL
-- (0x40 and 0x4000 are no flags there), and 0x10 is its MSG_INTERRUPT,
-- which no socket call takes either.
local MSG_PEEK, MSG_DONTWAIT, MSG_NOSIGNAL = 0x2, 0x40, 0x4000
local MSG_PROBE = 0x10  -- a real flag, but not one a send or receive call takes
if T.windows then MSG_DONTWAIT, MSG_NOSIGNAL = 0, 0 end

local function udp_pair()
	local a = assert(sock.udp())
	assert(a:bind('127.0.0.1', 0))
	local b = assert(sock.udp())
	assert(b:bind('127.0.0.1', 0))
	assert(a:connect('127.0.0.1', b:getsockname():port()))
	assert(b:connect('127.0.0.1', a:getsockname():port()))
	return a, b
end

-- 1. lengths -------------------------------------------------------------------

T.test('a length past the data or buffer is printed as it was given, not cut to an int', function()
	local u = assert(sock.udp())
	local buf = sock.buffer(3)
	T.raises("bad argument #3 to 'send' (length 4294967299 exceeds the data's size 3)",
		function() u:send('abc', 2^32 + 3) end)
	T.raises("bad argument #3 to 'send' (length 2147483648 exceeds the data's size 3)",
		function() u:send('abc', 2^31) end)
	T.raises("bad argument #5 to 'sendto' (length 4294967299 exceeds the data's size 3)",
		function() u:sendto('127.0.0.1', 9, 'abc', 2^32 + 3) end)
	T.raises("bad argument #3 to 'recv' (length 4294967297 exceeds the buffer's size 3)",
		function() u:recv(buf, 2^32 + 1) end)
	T.raises("bad argument #3 to 'recvnext' (length 2147483648 exceeds the buffer's size 3)",
		function() u:recvnext(buf, 2^31) end)
	u:close()
	local c, s = T.tcp_pair()
	T.raises("bad argument #3 to 'recvn' (length 4294967296 exceeds the buffer's size 3)",
		function() c:recvn(buf, 2^32) end)
	c:close()
	s:close()
end)

-- 2. flags ----------------------------------------------------------------------

T.test('flags: negative, fractional, too large or unknown bits raise, in every call that takes them', function()
	local a, b = udp_pair()
	local buf = sock.buffer(8)
	local calls = {  -- name, argument number of flags, call with flags
		{'send', 5, function(flags) return a:send('x', nil, T.deadline(), flags) end},
		{'sendto', 7, function(flags) return a:sendto('127.0.0.1', 9, 'x', nil, T.deadline(), flags) end},
		{'recv', 5, function(flags) return b:recv(buf, nil, T.deadline(0.05), flags) end},
		{'recvnext', 5, function(flags) return b:recvnext(buf, nil, T.deadline(0.05), flags) end},
	}
	for _, c in ipairs(calls) do
		local name, n, call = c[1], c[2], c[3]
		local prefix = ("bad argument #%d to '%s' ("):format(n, name)
		T.raises(prefix .. 'flags must not be negative)', call, -1)
		T.raises(prefix .. 'flags: 0x10000000000 is no MSG_* flag)', call, 2^40)
		T.raises(prefix .. 'flags: 0x80000000 is no MSG_* flag)', call, 2^31)
		T.raises(prefix .. 'flags: 0x10 is no MSG_* flag)', call, MSG_PROBE + MSG_DONTWAIT)
		T.raises(prefix .. 'number has no integer representation)', call, 1.5)
		T.raises(prefix .. 'flags: number expected, got string)', call, 'peek')
	end
	a:close()
	b:close()
end)

T.test('flags: the MSG_* flags work', function()
	local c, s = T.tcp_pair()
	assert(c:send('hello', nil, T.deadline(), MSG_NOSIGNAL + MSG_DONTWAIT))
	local buf = sock.buffer(16)
	T.eq(s:recvn(buf, 1, T.deadline()), buf)  -- (waits until the bytes are there)
	T.eq(s:recv(buf, 16, T.deadline(), MSG_PEEK), 4)
	T.eq(buf:tostring(1, 4), 'ello')
	T.eq(s:recv(buf, 16, T.deadline()), 4)  -- still there after the peek
	T.eq(buf:tostring(1, 4), 'ello')
	c:close()
	s:close()

	local a, b = udp_pair()
	T.eq(a:send('dgram', nil, T.deadline(), MSG_NOSIGNAL), 5)
	T.eq(b:recvnext(buf, nil, T.deadline(), MSG_PEEK), 5)
	T.eq(b:recv(buf, nil, T.deadline()), 5)
	T.eq(buf:tostring(1, 5), 'dgram')
	a:close()
	b:close()
end)

-- 3. stream-only reads -----------------------------------------------------------

T.test('recvn, recvall and recvall_read refuse datagram sockets', function()
	local sockets = {assert(sock.udp())}
	local x, y = assert(sock.socketpair('udp'))
	sockets[2] = x
	for _, u in ipairs(sockets) do
		local buf = sock.buffer(4)
		-- No deadline: recvall would have waited for an end that never comes.
		raises_at(here(), "bad argument #1 to 'recvn' (stream socket expected, got udp socket; use recv or recvnext)", function() u:recvn(buf, 4) end)
		raises_at(here(), "bad argument #1 to 'recvall' (stream socket expected, got udp socket; use recv or recvnext)", function() u:recvall() end)
		raises_at(here(), "bad argument #1 to 'recvall_read' (stream socket expected, got udp socket", function() u:recvall_read() end)
		u:close()
	end
	y:close()
end)

-- 4. timers ----------------------------------------------------------------------

T.test('runafter, runevery and runat refuse NaN at the caller, naming themselves', function()
	local f = function() error('the timer ran') end
	raises_at(here(), "bad argument #1 to 'runafter' (number expected, got NaN)", function() sock.runafter(0/0, f) end)
	raises_at(here(), "bad argument #1 to 'runevery' (number expected, got NaN)", function() sock.runevery(0/0, f) end)
	raises_at(here(), "bad argument #1 to 'runat' (number expected, got NaN)", function() sock.runat(0/0, f) end)
	raises_at(here(), "bad argument #1 to 'runafter' (number expected, got nil)", function() sock.runafter(nil, f) end)
	raises_at(here(), "bad argument #2 to 'runevery' (function expected, got nil)", function() sock.runevery(1, nil) end)
	sock.sleep(0.01)  -- (a timer thread that had started would raise in this turn)
end)

-- 5. error names -------------------------------------------------------------------

T.test('sendfile at an offset past what the file system addresses says value_too_large', function()
	local path = T.tmpname()
	local f = assert(io.open(path, 'wb'))
	f:write('hello')
	f:close()
	local c, s = T.tcp_pair()
	local sent, err, partial = c:sendfile(path, 2^62, nil, T.deadline())
	os.remove(path)
	if sent == 0 then  -- (tmpfs addresses up to 2^63: past the end, nothing to send)
		print('  (skipped: the file system of ' .. path .. ' addresses offset 2^62)')
	else
		T.eq(sent, nil)
		-- (Windows' C runtime and TransmitFile refuse such an offset as invalid)
		T.eq(err, T.windows and 'invalid_argument' or 'value_too_large')
		T.eq(partial, 0)
	end
	c:close()
	s:close()
end)

-- 6. lookups out of fds -------------------------------------------------------------

T.plain('a lookup out of fds says too_many_open_files, not host_not_found', function()
	local status, out = child.run('lookup_fdlimit.lua', {shell = 'ulimit -n 64 || exit 99;'})
	assert(status == 0, 'child failed (' .. tostring(status) .. '):\n' .. out)
	for _, where in ipairs{'in a thread', 'outside threads'} do
		for i = 1, 2 do
			local line = ('%s %d: too_many_open_files'):format(where, i)
			assert(out:find(line, 1, true), 'no "' .. line .. '" in:\n' .. out)
		end
		assert(out:find(where .. ', fds back: resolved', 1, true), out)
	end
end, T.not_on_windows('ulimit -n, a lower fd limit for the child, is POSIX'))

-- 7. types of optional arguments -----------------------------------------------------

T.test('sock.tcp and sock.udp: an options table takes nothing after it, and its keys are checked', function()
	local s = assert(sock.tcp({}))  -- an empty options table: the defaults
	T.eq(s:family(), 'inet')
	s:close()
	raises_at(here(), "bad argument #2 to 'tcp' (nothing expected after the options table, got string)", function() sock.tcp({}, 'tcp') end)
	raises_at(here(), "bad argument #2 to 'udp' (nothing expected after the options table, got table)", function() sock.udp({}, {}) end)
	raises_at(here(), "bad argument #1 to 'tcp' (protocol: string or number expected, got table)", function() sock.tcp({protocol = {}}) end)
	raises_at(here(), "bad argument #1 to 'udp' (family: string expected, got table)", function() sock.udp({family = {}}) end)
	raises_at(here(), "bad argument #1 to 'udp' (family: string expected, got number)", function() sock.udp({family = 2}) end)
	raises_at(here(), "bad argument #1 to 'tcp' (unknown protocol 'bogus')", function() sock.tcp({protocol = 'bogus'}) end)
	raises_at(here(), "bad argument #1 to 'tcp' (ipv6: boolean expected, got string)", function() sock.tcp({ipv6 = 'no'}) end)
	raises_at(here(), "bad argument #1 to 'udp' (ipv6: boolean expected, got number)", function() sock.udp({ipv6 = 0}) end)
	raises_at(here(), "bad argument #2 to 'tcp' (string expected, got table)", function() sock.tcp(nil, {}) end)
	raises_at(here(), "bad argument #2 to 'raw' (string expected, got boolean)", function() sock.raw('inet', true) end)
end)

T.test('the helpers check the types of their options', function()
	raises_at(here(), "bad argument #3 to 'listen_tcp' (unknown family 'bogus')", function() sock.listen_tcp('127.0.0.1', 0, {family = 'bogus'}) end)
	raises_at(here(), "bad argument #3 to 'listen_tcp' (backlog: number expected, got string)", function() sock.listen_tcp('127.0.0.1', 0, {backlog = 'max'}) end)
	raises_at(here(), "bad argument #3 to 'connect_tcp' (expires: number expected, got string)", function() sock.connect_tcp('127.0.0.1', 1, {expires = 'soon'}) end)
	raises_at(here(), "bad argument #3 to 'listen_udp' (ipv6: boolean expected, got table)", function() sock.listen_udp('127.0.0.1', 0, {ipv6 = {}}) end)
	raises_at(here(), "bad argument #3 to 'connect_udp' (protocol: string or number expected, got boolean)", function() sock.connect_udp('127.0.0.1', 9, {protocol = true}) end)
	raises_at(here(), "bad argument #2 to 'listen_unix' (datagram: boolean expected, got number)", function() sock.listen_unix('@sock-test-arguments', {datagram = 1}) end)
	raises_at(here(), "bad argument #2 to 'listen_unix' (unlink: boolean expected, got string)", function() sock.listen_unix('@sock-test-arguments', {unlink = 'yes'}) end)
	raises_at(here(), "bad argument #3 to 'listen_unix' (unlink: boolean expected, got string)", function() sock.listen_unix('@sock-test-arguments', nil, {unlink = 'yes'}) end)
	raises_at(here(), "bad argument #2 to 'connect_unix' (local_path: string expected, got number)", function() sock.connect_unix('@sock-test-arguments', {local_path = 5}) end)
	raises_at(here(), "bad argument #2 to 'connect_unix' (expires: number expected, got string)", function() sock.connect_unix('@sock-test-arguments', {expires = 'soon'}) end)
	raises_at(here(), "bad argument #3 to 'connect_unix' (nothing expected after the options table, got table)", function() sock.connect_unix('@sock-test-arguments', {}, {}) end)
end)

-- 8. where errors point ---------------------------------------------------------------

T.test("errors of the C functions behind sock's Lua wrappers point at the caller's line", function()
	local s = assert(sock.tcp())
	local u = assert(sock.udp())
	raises_at(here(), "bad argument #3 to 'connect' (port number or service name expected, got table)", function() s:connect('localhost', {}, T.deadline()) end)
	raises_at(here(), "bad argument #4 to 'connect' (expires: number expected, got string)", function() s:connect('127.0.0.1', 1, 'soon') end)
	raises_at(here(), "bad argument #2 to 'bind' (host string expected, got boolean)", function() s:bind(true, 0) end)
	raises_at(here(), "bad argument #3 to 'listen' (host string expected, got table)", function() s:listen(16, {}, 0) end)
	raises_at(here(), "bad argument #3 to 'sendto' (port number or service name expected, got table)", function() u:sendto('127.0.0.1', {}, 'x') end)
	raises_at(here(), "bad argument #4 to 'addr' (unknown address family 'bogus')", function() sock.addr('localhost', 80, nil, 'bogus') end)
	raises_at(here(), "bad argument #2 to 'recvall' (number expected, got string)", function() s:recvall('soon') end)
	raises_at(here(), "bad argument #1 to 'run' (function expected, got nil)", function() sock.run(nil) end)
	s:close()
	u:close()
end)

T.plain('errors raised outside threads point at the caller too', function()
	local s = assert(sock.tcp())
	raises_at(here(), 'connect: I/O and sleeping work only inside a sock thread', function() s:connect('127.0.0.1', 1) end)
	raises_at(here(), "bad argument #1 to 'runafter' (number expected, got nil)", function() sock.runafter(nil, print) end)
	raises_at(here(), "bad argument #1 to 'tcp' (unknown family 'bogus')", function() sock.tcp('bogus') end)
	s:close()
end)

-- 9. UDP connect outside threads ---------------------------------------------------------

T.plain('sock.connect_udp and udp:connect work outside threads', function()
	local server = assert(sock.udp())
	assert(server:bind('127.0.0.1', 0))
	local port = server:getsockname():port()
	for _, host in ipairs{'127.0.0.1', 'localhost'} do
		local c = assert(sock.connect_udp(host, port))
		T.eq(c:getpeername():port(), port)
		c:close()
	end
	local u = assert(sock.udp())
	assert(u:connect('127.0.0.1', port))
	T.eq(u:getpeername():port(), port)
	assert(u:connect('*', 0))  -- back to any peer
	local ok, err = u:getpeername()
	T.eq(ok, nil)
	T.eq(err, 'not_connected')
	u:close()
	-- The connected socket works in a thread afterwards.
	local c = assert(sock.connect_udp('127.0.0.1', port))
	sock.run(function()
		T.eq(c:send('ping', nil, T.deadline()), 4)
		local buf = sock.buffer(8)
		T.eq(server:recv(buf, nil, T.deadline()), 4)
		T.eq(buf:tostring(1, 4), 'ping')
	end)
	c:close()
	server:close()
end)

-- 10. SIGPIPE around sendfile ------------------------------------------------------------

-- Runs children/sendfile_sigpipe.lua under `env <opt>=PIPE`; nil when this
-- env cannot do that.
local function run_sigpipe_child(opt, mode)
	local wrap = 'env ' .. opt .. '=PIPE'
	local probe = io.popen(wrap .. " true 2>&1; echo \"status $?\"")
	local probed = probe:read('*a')
	probe:close()
	if not probed:find('status 0', 1, true) then
		print('  (skipped: ' .. wrap .. ' does not work here: ' .. probed:gsub('\n', ' ') .. ')')
		return nil
	end
	return child.run('sendfile_sigpipe.lua', {wrap = wrap}, mode)
end

-- Whether this build's sendfile has a zero-copy call that raises SIGPIPE,
-- which it blocks and takes back (Linux's sendfile(2)); a portable build
-- copies with send(MSG_NOSIGNAL) instead, and no SIGPIPE is ever blocked.
local function zero_copy_blocks_sigpipe()
	if sock._sendfile_signal_window(0) then return true end
	print('  (skipped in this build: no zero-copy sendfile that blocks SIGPIPE (portable paths), so no foreign SIGPIPE to let through)')
	return false
end

T.plain('sendfile takes back only its own SIGPIPE (default disposition)', function()
	local status, out = run_sigpipe_child('--default-signal', 'own')
	if not status then return end
	assert(status == 0, 'child ended with status ' .. tostring(status) .. ' (141: killed by SIGPIPE):\n' .. out)
	assert(out:find('own: broken_pipe', 1, true), out)
	if not zero_copy_blocks_sigpipe() then return end
	-- A SIGPIPE sent to the process while sendfile blocks it reaches it.
	status, out = run_sigpipe_child('--default-signal', 'foreign')
	assert(status == 141, 'the SIGPIPE sent to the child was swallowed (status ' .. tostring(status) .. '):\n' .. out)
	assert(not out:find('survived', 1, true), out)
end, T.not_on_windows('SIGPIPE is POSIX'))

T.plain('sendfile takes back only its own SIGPIPE (SIGPIPE blocked by the host)', function()
	local status, out = run_sigpipe_child('--block-signal', 'own')
	if not status then return end
	assert(status == 0, 'child failed (' .. tostring(status) .. '):\n' .. out)
	assert(out:find('own: broken_pipe', 1, true), out)
	assert(out:find('thread SIGPIPE pending: false', 1, true), 'the call left its SIGPIPE pending:\n' .. out)
	if not zero_copy_blocks_sigpipe() then return end
	status, out = run_sigpipe_child('--block-signal', 'foreign')
	assert(status == 0, 'child failed (' .. tostring(status) .. '):\n' .. out)
	assert(out:find('foreign: sent 1000', 1, true), out)
	assert(out:find('process SIGPIPE pending: true', 1, true), 'the SIGPIPE sent to the child was swallowed:\n' .. out)
end, T.not_on_windows('SIGPIPE is POSIX'))

T.done()
