-- TLS: sock against itself, `openssl s_server` and curl, over loopback.
-- The certificates are tls-certs.sh's (beside this file), made when the tests
-- run, valid for a day: in SOCK_TEST_CERT_DIR when it names a directory (the
-- Windows tests under Wine, where no sh or openssl command runs, get them
-- from a CTest fixture on the host), else this file runs the script itself
-- into a temp dir.
local T = require'testlib'
local sock = T.sock

if not sock._tls_available then
	T.plain('built without TLS: a clear error', function()
		T.raises('sock was built without TLS (OpenSSL 3 not found)', sock.tls_client, {}, 'x')
	end)
	T.done()
	return
end

local function sh(cmd)
	local ok = os.execute(cmd)
	assert(ok == true or ok == 0, 'failed: ' .. cmd)
end

local function readfile(path)
	local f = io.open(path, 'rb')
	if not f then return nil end
	local s = f:read('*a')
	f:close()
	return s
end

-- recvall's buffer as a string: cdata on LuaJIT, a sock.buffer elsewhere.
local function bufstr(buf, len)
	if type(buf) == 'cdata' then return require'ffi'.string(buf, len) end
	return buf:tostring(1, len)
end

-- Certificates ----------------------------------------------------------------

-- (dir: this run's own, for what the tests write: the peers' logs)
local cert_dir, dir = T.tls_certs()
local function path(name) return cert_dir .. '/' .. name end  -- (Windows takes '/' too)
local function scratch(name) return dir .. '/' .. name end

local function server_opt(name)
	name = name or 'server'
	return {cert_file = path(name .. '.pem'), key_file = path(name .. '.key')}
end
local client_opt = {ca_file = path('ca.pem')}

-- A TLS listener on 127.0.0.1 and its port.
local function tls_listener(opt)
	local l = assert(sock.listen_tls('127.0.0.1', 0, opt or server_opt()))
	return l, l:getsockname():port()
end

-- Serve one connection with f(conn) in a thread of its own.
local function serve_one(l, f)
	return T.go(function()
		local c, err = l:accept(T.deadline())
		if not c then return nil, err end
		local r = {f(c)}
		c:close()
		return (table.unpack or unpack)(r)
	end)
end

-- Argument errors ------------------------------------------------------------

T.plain('bad options raise, naming the function and the option', function()
	local tcp = assert(sock.tcp())
	T.raises("bad argument #3 to 'tls_client' (unknown option 'bogus')", sock.tls_client, tcp, 'x', {bogus = 1})
	T.raises("bad argument #3 to 'tls_client' (option 'verify': boolean expected, got string)",
		sock.tls_client, tcp, 'x', {verify = 'no'})
	T.raises("bad argument #3 to 'tls_client' (ca_file '/nonexistent.pem'", sock.tls_client, tcp, 'x',
		{ca_file = '/nonexistent.pem'})
	T.raises("bad argument #3 to 'tls_client' (unknown protocol version 'tls9')", sock.tls_client, tcp, 'x',
		{min_version = 'tls9'})
	T.raises("bad argument #2 to 'tls_server' (a TLS server needs a certificate and its key)",
		sock.tls_server, tcp, {})
	T.raises("bad argument #1 to 'tls_client' (tcp socket expected, got nil)", sock.tls_client)
	tcp:close()
end)

-- sock to sock ---------------------------------------------------------------

T.test('sock to sock: handshake, certificate, ALPN, version, data, clean close', function()
	local l, port = tls_listener{cert_file = path('server.pem'), key_file = path('server.key'), alpn = {'x/1', 'http/1.1'}}
	local server = serve_one(l, function(c)
		assert(c:handshake(T.deadline()))
		local line = assert(c:readline(T.deadline()))
		assert(c:send(line:upper() .. '\r\n', nil, T.deadline()))
		local n = assert(c:readn(5, T.deadline()))
		assert(c:send(n .. '|' .. c:alpn() .. '|' .. tostring(c.remote_port), nil, T.deadline()))
		return true
	end)
	local c = assert(sock.connect_tls('localhost', port, {ca_file = path('ca.pem'), alpn = 'http/1.1'}, T.deadline()))
	T.eq(c:version(), 'TLSv1.3')
	T.eq(c:alpn(), 'http/1.1')
	local cert = c:peer_certificate()
	T.eq(cert.subject, 'CN=localhost')
	T.eq(cert.issuer, 'CN=sock-test-CA')
	T.eq(cert.names[1], 'localhost')
	T.eq(cert.names[2], '127.0.0.1')
	assert(cert.not_after > os.time() and cert.not_after < os.time() + 2 * 86400)
	assert(c:send('hello tls\nabcde', nil, T.deadline()))
	T.eq(c:readline(T.deadline()), 'HELLO TLS')
	local rest, len = c:recvall(T.deadline())
	T.eq(bufstr(rest, len), 'abcde|http/1.1|' .. c:getsockname():port())
	assert(server())
	-- the server closed with close_notify: a clean end
	T.eq(c:recv(sock.buffer(10), 10, T.deadline()), 0)
	c:close()
	T.eq(c:closed(), true)
	assert(c:close())  -- twice is harmless
	l:close()
end)

T.test('a client config resumes its last session with a server', function()
	local l, port = tls_listener()
	local config = sock.tls_config{ca_file = path('ca.pem')}
	local fresh = {ca_file = path('ca.pem'), session_reuse = false}
	for round = 1, 3 do
		local opt = round == 3 and fresh or config
		local server = serve_one(l, function(c) return c:send('hi\n', nil, T.deadline()) end)
		local c = assert(sock.connect_tls('localhost', port, opt, T.deadline()))
		T.eq(c:readline(T.deadline()), 'hi')  -- (TLS 1.3: the ticket comes after the handshake)
		T.eq(c:session_reused(), round == 2, 'round ' .. round)
		T.eq(c:peer_certificate().subject, 'CN=localhost')
		assert(server())
		c:close()
	end
	l:close()
end)

T.test('recv/recvn/readuntil/read share the read-ahead; nothing is lost', function()
	local l, port = tls_listener()
	local server = serve_one(l, function(c)
		assert(c:send('one;two;three and more', nil, T.deadline()))
		return true
	end)
	local c = assert(sock.connect_tls('127.0.0.1', port, client_opt, T.deadline()))
	T.eq(c:readuntil(';', nil, T.deadline()), 'one')
	local buf = sock.buffer(4)
	assert(c:recvn(buf, 4, T.deadline()))
	T.eq(buf:tostring(), 'two;')
	T.eq(c:readuntil(' ', 3, T.deadline()), nil)  -- 'three' is longer than 3
	T.eq(c:read(5, T.deadline()), 'three')
	local s, err, partial = c:readn(100, T.deadline())
	T.eq(s, nil)
	T.eq(err, 'eof')
	T.eq(partial, ' and more')
	assert(server())
	c:close()
	l:close()
end)

T.test('large transfers both ways, in full', function()
	local l, port = tls_listener()
	local chunk = {}
	for i = 1, 4096 do chunk[i] = string.char((i * 7 + 3) % 256) end
	local block = table.concat(chunk)
	local data = block:rep(1024)  -- 4 MiB
	local server = serve_one(l, function(c)
		-- echo back everything as it comes
		local buf = sock.buffer(65536)
		local total = 0
		while total < #data do
			local n, err = c:recv(buf, 65536, T.deadline(20))
			if not n or n == 0 then return nil, err end
			assert(c:send(buf, n, T.deadline(20)))
			total = total + n
		end
		return total
	end)
	local c = assert(sock.connect_tls('localhost', port, client_opt, T.deadline()))
	local sender = T.go(function() return c:send(data, nil, T.deadline(20)) end)
	local got = assert(c:readn(#data, T.deadline(20)))
	assert(sender())
	T.eq(#got, #data)
	assert(got == data, 'the echoed data differs')
	T.eq(server(), #data)
	c:close()
	l:close()
end, 30)

T.test('mutual TLS: the server sees the client certificate; none is refused', function()
	local opt = server_opt()
	opt.ca_file = path('ca.pem')
	opt.verify_client = true
	local l, port = tls_listener(opt)
	local server = serve_one(l, function(c)
		assert(c:handshake(T.deadline()))
		assert(c:send(c:peer_certificate().subject .. '\n', nil, T.deadline()))
		return true
	end)
	local c = assert(sock.connect_tls('localhost', port, {ca_file = path('ca.pem'),
		cert_file = path('client.pem'), key_file = path('client.key')}, T.deadline()))
	T.eq(c:readline(T.deadline()), 'CN=sock-test-client')
	assert(server())
	c:close()

	-- without a certificate: the server's handshake fails, and the client
	-- learns it at its first read (TLS 1.3 ends the client's part first)
	server = serve_one(l, function(c) return c:handshake(T.deadline()) end)
	local c2, err = sock.connect_tls('localhost', port, client_opt, T.deadline())
	local ok, serr = server()
	T.eq(ok, nil)
	assert(serr:find('certificate'), serr)
	if c2 then
		local line, rerr = c2:readline(T.deadline())
		T.eq(line, nil)
		assert(rerr:find('certificate'), rerr)
		c2:close()
	else
		assert(err:find('certificate'), err)
	end
	l:close()
end)

T.test('bad certificates are rejected with a clear message', function()
	local cases = {
		{'expired', 'localhost', 'certificate verify failed: certificate has expired'},
		{'selfsigned', 'localhost', 'certificate verify failed: self-signed certificate'},
		{'wrongname', 'localhost', 'certificate verify failed: hostname mismatch'},
		{'server', 'other.test', 'certificate verify failed: hostname mismatch'},
	}
	for _, case in ipairs(cases) do
		local l, port = tls_listener(server_opt(case[1]))
		local server = serve_one(l, function(c) return c:handshake(T.deadline()) end)
		local c, err = sock.connect_tls('127.0.0.1', port, {ca_file = path('ca.pem'), servername = case[2]}, T.deadline())
		T.eq(c, nil, case[1])
		T.eq(err, case[3], case[1])
		local ok = server()
		T.eq(ok, nil, case[1] .. ': the server sees the failure too')
		l:close()
	end
	-- verification off: anything goes
	local l, port = tls_listener(server_opt('selfsigned'))
	local server = serve_one(l, function(c) return c:handshake(T.deadline()) end)
	local c = assert(sock.connect_tls('127.0.0.1', port, {verify = false}, T.deadline()))
	assert(server())
	c:close()
	l:close()
end)

T.test('a slow peer: records arriving a few bytes at a time', function()
	-- A relay that passes the server's ciphertext on to the client 7 bytes
	-- at a time, so records and handshake messages arrive in pieces.
	local l, port = tls_listener()
	local server = serve_one(l, function(c)
		assert(c:send('slow line one\nslow line two\n', nil, T.deadline()))
		return c:readline(T.deadline())
	end)
	local relay, relay_port = T.listener()
	local relaying = T.go(function()
		local a = assert(relay:accept(T.deadline()))
		local b = assert(sock.connect_tcp('127.0.0.1', port, {expires = T.deadline()}))
		local up = T.go(function()  -- client -> server as it comes
			local buf = sock.buffer(4096)
			while true do
				local n = a:recv(buf, 4096, T.deadline())
				if not n or n == 0 then break end
				if not b:send(buf, n, T.deadline()) then break end
			end
			b:shutdown('w')
		end)
		local buf = sock.buffer(7)
		while true do  -- server -> client, slowly
			local n = b:recv(buf, 7, T.deadline())
			if not n or n == 0 then break end
			if not a:send(buf, n, T.deadline()) then break end
			sock.sleep(0.001)
		end
		a:shutdown('w')
		up()
		a:close()
		b:close()
	end)
	local c = assert(sock.connect_tls('localhost', relay_port, client_opt, T.deadline()))
	T.eq(c:readline(T.deadline()), 'slow line one')
	T.eq(c:readline(T.deadline()), 'slow line two')
	assert(c:send('done\n', nil, T.deadline()))
	T.eq(server(), 'done')
	T.eq(c:recv(sock.buffer(1), 1, T.deadline()), 0)  -- the server's close_notify
	c:close()
	relaying()
	relay:close()
	l:close()
end)

T.test('a handshake has a deadline: a peer that never answers gives timeout', function()
	local l, port = T.listener()
	local held
	local acceptor = T.go(function() held = l:accept(T.deadline()) end)
	local t0 = sock.clock()
	local c, err = sock.connect_tls('127.0.0.1', port, client_opt, sock.clock() + 0.3)
	T.eq(c, nil)
	T.eq(err, 'timeout')
	assert(sock.clock() - t0 < 2)
	acceptor()
	-- tls_client + handshake: the connection stays usable after a timeout
	local tcp = assert(sock.connect_tcp('127.0.0.1', port, {expires = T.deadline()}))
	local held2 = assert(l:accept(T.deadline()))
	local conn = assert(sock.tls_client(tcp, 'localhost', client_opt))
	T.eq(select(2, conn:handshake(sock.clock() + 0.1)), 'timeout')
	T.eq(select(2, conn:recv(sock.buffer(1), 1, sock.clock() - 1)), 'timeout')
	conn:close()
	held:close()
	held2:close()
	l:close()
end)

T.test('a peer that resets mid-handshake: connection_reset', function()
	local l, port = T.listener()
	local peer = T.go(function()
		local s = assert(l:accept(T.deadline()))
		assert(s:recv(sock.buffer(1), 1, T.deadline()))  -- part of the ClientHello
		assert(s:setopt('linger', 0))
		s:close()  -- unread data: RST
	end)
	local c, err = sock.connect_tls('127.0.0.1', port, client_opt, T.deadline())
	peer()
	T.eq(c, nil)
	T.eq(err, 'connection_reset')
	l:close()
end)

T.test('a peer that ends the stream mid-handshake: eof', function()
	local l, port = T.listener()
	local peer = T.go(function()
		local s = assert(l:accept(T.deadline()))
		assert(s:recv(sock.buffer(1), 1, T.deadline()))
		assert(s:shutdown('w'))  -- FIN, then wait for the client to give up
		local buf = sock.buffer(4096)
		repeat local n = s:recv(buf, 4096, T.deadline()) until not n or n == 0
		s:close()
	end)
	local c, err = sock.connect_tls('127.0.0.1', port, client_opt, T.deadline())
	T.eq(c, nil)
	T.eq(err, 'eof')
	peer()
	l:close()
end)

-- As a tcp socket's: recv and send in a plain coroutine (inside a sock
-- thread, not sock.cowrap's) raise only when they would have to wait.
T.test('recv and send in a plain coroutine raise only when they would wait', function()
	local l, port = tls_listener()
	local server = serve_one(l, function(c)
		assert(c:send('hello world', nil, T.deadline()))
		return c:readn(2, T.deadline())
	end)
	local c = assert(sock.connect_tls('127.0.0.1', port, client_opt, T.deadline()))
	local buf = sock.buffer(16)
	T.eq(c:recv(buf, 5, T.deadline()), 5)  -- (the rest of the record stays in hand)
	local n = coroutine.wrap(function() return c:recv(buf, 16) end)()
	T.eq(n, 6)
	T.eq(buf:tostring(1, 6), ' world')
	T.eq(coroutine.wrap(function() return c:send('ok') end)(), true)
	T.raises('recv: cannot wait inside a plain coroutine', coroutine.wrap(function() return c:recv(buf, 16) end))
	T.eq(server(), 'ok')
	-- and the connection goes on as before
	T.eq(c:recv(buf, 16, T.deadline()), 0)
	c:close()
	l:close()
end)

T.test('an end without close_notify is told apart from a clean one', function()
	local l, port = tls_listener()
	local server = serve_one(l, function(c)
		assert(c:send('partial', nil, T.deadline()))
		c.tcp:close()  -- no close_notify
		return true
	end)
	local c = assert(sock.connect_tls('127.0.0.1', port, client_opt, T.deadline()))
	local buf, err, partial, len = c:recvall(T.deadline())
	T.eq(buf, nil)
	T.eq(err, 'eof_without_close_notify')
	T.eq(len, 7)
	local n, why = c:recv(sock.buffer(4), 4, T.deadline())
	T.eq(n, 0)
	T.eq(why, 'eof_without_close_notify')
	assert(server())
	c:close()
	l:close()
end)

T.test('two threads share one handshake; close wakes a waiting reader; I/O after close says closed', function()
	local l, port = tls_listener()
	local server = serve_one(l, function(c)
		T.eq(c:readline(T.deadline()), 'from the writer')
		return c:readline(T.deadline())  -- until the client closes
	end)
	local tcp = assert(sock.connect_tcp('127.0.0.1', port, {expires = T.deadline()}))
	local c = assert(sock.tls_client(tcp, 'localhost', client_opt))
	local reader = T.go(function() return c:readline(T.deadline()) end)  -- starts the handshake
	local writer = T.go(function() return c:send('from the writer\n', nil, T.deadline()) end)  -- waits for it
	assert(writer())
	T.eq(c:version(), 'TLSv1.3')
	c:close()
	local line, err = reader()
	T.eq(line, nil)
	T.eq(err, 'closed')
	T.eq(select(2, c:recv(sock.buffer(1), 1, T.deadline())), 'closed')
	T.eq(select(2, c:readline(T.deadline())), 'closed')
	T.eq(select(2, c:send('x', nil, T.deadline())), 'closed')
	local _, rerr, partial, len = c:recvall(T.deadline())
	T.eq(rerr, 'closed')
	T.eq(len, 0)
	server()
	l:close()
end)

-- The C-level I/O paths (lua_tls.cpp) ---------------------------------------------

-- A tcp relay to the TLS server at `port`: the client's bytes go up as they
-- come; each chunk of the server's goes to down(a, chunk), which passes it
-- on to the client socket `a` as it likes (down(a, nil) at the end).
-- Returns the relay's port and a function that waits for it to end.
local function relay(port, down)
	local l, rport = T.listener()
	local done = T.go(function()
		local a = assert(l:accept(T.deadline()))
		local b = assert(sock.connect_tcp('127.0.0.1', port, {expires = T.deadline()}))
		local up = T.go(function()
			local buf = sock.buffer(65536)
			while true do
				local n = a:recv(buf, 65536, T.deadline(20))
				if not n or n == 0 then break end
				if not b:send(buf, n, T.deadline(20)) then break end
			end
			b:shutdown('w')
		end)
		local buf = sock.buffer(65536)
		while true do
			local n = b:recv(buf, 65536, T.deadline(20))
			if not n or n == 0 then break end
			down(a, bufstr(buf, n))
		end
		down(a, nil)
		a:shutdown('w')
		up()
		a:close()
		b:close()
		l:close()
	end)
	return rport, done
end

T.test('a deadline in the middle of a record: timeout, and the record still comes whole', function()
	local l, port = tls_listener()
	local hold, holding = sock.sleep_job(), false
	local part_passed = T.latch(1)
	local rport, relaying = relay(port, function(a, data)
		if data and holding then  -- the record: 10 bytes now, the rest when told
			holding = false
			assert(a:send(data:sub(1, 10), nil, T.deadline()))
			part_passed.done()
			hold:sleep(5)
			data = data:sub(11)
		end
		if data and #data > 0 then assert(a:send(data, nil, T.deadline())) end
	end)
	local server = serve_one(l, function(c)
		T.eq(c:readline(T.deadline()), 'ping')
		assert(c:send('pong\n', nil, T.deadline()))  -- (after the session tickets)
		T.eq(c:readline(T.deadline()), 'go')
		assert(c:send('the whole record', nil, T.deadline()))
		return c:readline(T.deadline())
	end)
	local c = assert(sock.connect_tls('127.0.0.1', rport, client_opt, T.deadline()))
	assert(c:send('ping\n', nil, T.deadline()))
	T.eq(c:readline(T.deadline()), 'pong')
	holding = true
	assert(c:send('go\n', nil, T.deadline()))
	assert(part_passed.wait(5), 'the relay did not pass the first part on')
	local buf = sock.buffer(100)
	local t0 = sock.clock()
	local n, err = c:recv(buf, 100, sock.clock() + 0.2)
	T.eq(n, nil)
	T.eq(err, 'timeout')
	assert(sock.clock() - t0 < 2)
	hold:wakeup()
	n = assert(c:recv(buf, 100, T.deadline()))
	T.eq(bufstr(buf, n), 'the whole record')
	assert(c:send('done\n', nil, T.deadline()))
	T.eq(server(), 'done')
	c:close()
	relaying()
	l:close()
end)

T.test('records cut at odd places and run together: every byte comes, in order', function()
	local l, port = tls_listener()
	local sizes, k = {1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597, 4181}, 0
	local rport, relaying = relay(port, function(a, data)
		if not data then return end
		local i = 1
		while i <= #data do  -- pieces of changing sizes, each its own send
			k = k % #sizes + 1
			local piece = data:sub(i, i + sizes[k] - 1)
			assert(a:send(piece, nil, T.deadline()))
			i = i + #piece
		end
	end)
	-- many records of many sizes, written without waiting (they run together)
	local parts, expected = {}, {}
	for i = 1, 300 do
		local p = string.rep(string.char(65 + i % 26), (i * 37) % 3000 + 1)
		parts[i] = p
		expected[i] = p
	end
	expected = table.concat(expected)
	local server = serve_one(l, function(c)
		for i = 1, #parts do assert(c:send(parts[i], nil, T.deadline())) end
		return c:readline(T.deadline())
	end)
	local c = assert(sock.connect_tls('127.0.0.1', rport, client_opt, T.deadline()))
	-- read with recv of odd sizes too
	local got, buf, want = {}, sock.buffer(4096), 1
	local total = 0
	while total < #expected do
		want = want % 4000 + 7
		local n = assert(c:recv(buf, math.min(want, #expected - total), T.deadline()))
		assert(n > 0)
		got[#got + 1] = bufstr(buf, n)
		total = total + n
	end
	assert(table.concat(got) == expected, 'the data differs')
	assert(c:send('thanks\n', nil, T.deadline()))
	T.eq(server(), 'thanks')
	T.eq(c:recv(buf, 10, T.deadline()), 0)  -- close_notify
	c:close()
	relaying()
	l:close()
end)

-- Two deadlines: one that ends a wait (tls_ready), one past before the
-- first wait could start (push_wait_failure; under valgrind the first,
-- when encrypting a step outlasted it). Either way the step the engine took
-- counts as sent.
for _, deadline in ipairs{{'0.3 s', function() return sock.clock() + 0.3 end}, {'past', function() return 0 end}} do
T.test('a send that times out keeps what it encrypted: the stream stays whole (deadline ' .. deadline[1] .. ')', function()
	local l, port = tls_listener()
	local chunk = {}
	for i = 1, 4088 do chunk[i] = string.char((i * 13 + 5) % 256) end
	chunk = table.concat(chunk)
	-- 16 MiB, more than the socket buffers hold, in 4 KiB blocks that each
	-- begin with their number: a part sent twice or lost cannot pass.
	local blocks = {}
	for i = 1, 4096 do blocks[i] = ('%08d'):format(i) .. chunk end
	local data = table.concat(blocks)
	local timed_out = T.latch(1)
	local server = serve_one(l, function(c)
		assert(c:handshake(T.deadline()))
		assert(timed_out.wait(10))  -- nothing read until the client's send gave up
		local got = assert(c:readn(#data, T.deadline(30)))
		return got == data
	end)
	local c = assert(sock.connect_tls('127.0.0.1', port, client_opt, T.deadline()))
	local ok, err, sent = c:send(data, nil, deadline[2]())
	T.eq(ok, nil)
	T.eq(err, 'timeout')
	assert(sent > 0 and sent < #data, 'sent ' .. tostring(sent))
	timed_out.done()
	assert(c:send(data:sub(sent + 1), nil, T.deadline(30)))
	T.eq(server(), true, 'the server got the data whole')
	c:close()
	l:close()
end, 40)
end

-- Bad arguments to a TLS connection's stream methods raise what the same
-- call on a tcp socket raises, word for word, before the handshake and
-- after it (NaN and negative lengths were undefined conversions to a size:
-- UBSan stops there).
local BAD_CALLS = {
	{'recv', 'buf', -1}, {'recv', 'buf', 0/0}, {'recv', 'buf', 1.5}, {'recv', 'buf', 17}, {'recv', 'buf', '4'},
	{'recv', 'buf', 4, 0/0}, {'recv', 'text', 4}, {'recv', nil, 4},
	{'send', 'text', 0/0}, {'send', 'text', -5}, {'send', 'text', 5}, {'send', 'buf', 17}, {'send', {}},
	{'send', 'text', nil, 0/0},
	{'recvn', 'buf', 17}, {'recvn', 'buf', -1}, {'recvn', 'buf', 0/0}, {'recvn', 'text', 1},
	{'read', 0}, {'read', -1}, {'read', 'x'}, {'read', 1.5}, {'read', nil, 0/0},
	{'readn'}, {'readn', -1}, {'readn', math.huge}, {'readn', 1.5}, {'readn', 0/0},
	{'readuntil', ''}, {'readuntil', 5}, {'readuntil', 'x', -1}, {'readuntil', 'x', 1.5},
	{'readline', 0/0},
	{'setmaxline', -1}, {'setmaxline', 'x'},
}

local function bad_call_message(obj, call, buf)
	local args = {}
	for i = 2, 4 do
		local v = call[i]
		if v == 'buf' then v = buf elseif v == 'text' then v = 'abcd' end
		args[i - 1] = v
	end
	local ok, err = pcall(obj[call[1]], obj, args[1], args[2], args[3])
	if ok then return nil end
	return tostring(err)
end

T.test("bad arguments raise as a tcp socket's: the same message, before and after the handshake", function()
	local l, port = tls_listener()
	local server = serve_one(l, function(c)
		local got = assert(c:readn(10, T.deadline()))
		return got
	end)
	local tc, ts = T.tcp_pair()
	local tcp = assert(sock.connect_tcp('127.0.0.1', port, {expires = T.deadline()}))
	local fresh = assert(sock.tls_client(tcp, 'localhost', client_opt))
	local buf = sock.buffer(16)
	local function check_all(conn, when)
		for _, call in ipairs(BAD_CALLS) do
			local want = bad_call_message(ts, call, buf)
			local name = when .. ' ' .. call[1] .. '(' .. tostring(call[2]) .. ', ' .. tostring(call[3]) .. ', '
				.. tostring(call[4]) .. ')'
			assert(want, 'the tcp socket took ' .. name)
			T.eq(bad_call_message(conn, call, buf), want, name)
		end
	end
	check_all(fresh, 'before the handshake:')
	assert(fresh:handshake(T.deadline()))
	check_all(fresh, 'after the handshake:')
	assert(fresh:send('still fine', nil, T.deadline()))
	T.eq(server(), 'still fine')
	fresh:close()
	tc:close()
	ts:close()
	l:close()
end)

T.test('a recv past its deadline still tries once: a record sent meanwhile comes', function()
	local l, port = tls_listener()
	local accepted = T.go(function()
		local sc = assert(l:accept(T.deadline()))
		assert(sc:handshake(T.deadline()))
		return sc
	end)
	local c = assert(sock.connect_tls('127.0.0.1', port, client_opt, T.deadline()))
	local sc = accepted()
	-- Both ends in this thread, so that no loop turn looks at the socket
	-- between the send and the recv.
	-- (Nagle's algorithm would hold the second record back until the first
	-- is acknowledged.)
	assert(c.tcp:setopt('tcp_nodelay', true))
	local buf = sock.buffer(16)
	assert(c:send('a', nil, T.deadline()))
	T.eq(sc:recv(buf, 16, T.deadline()), 1)  -- short: a recv now would surely find nothing...
	assert(c:send('b', nil, T.deadline()))   -- ...but this record came, sent at once
	T.eq(sc:recv(buf, 16, sock.clock() - 10), 1)
	T.eq(buf:tostring(1, 1), 'b')
	sc:close()
	c:close()
	l:close()
end)

T.test('close wakes a thread waiting in recv and one waiting in send; a second reader is busy', function()
	local l, port = tls_listener()
	local release = T.latch(1)
	local server = serve_one(l, function(c)
		assert(c:handshake(T.deadline()))
		release.wait(10)  -- reads nothing meanwhile
		return true
	end)
	local c = assert(sock.connect_tls('127.0.0.1', port, client_opt, T.deadline()))
	local reader = T.go(function() return c:recv(sock.buffer(10), 10, T.deadline()) end)
	-- a second reader while the first waits
	local n, err = c:recv(sock.buffer(10), 10, T.deadline())
	T.eq(n, nil)
	T.eq(err, 'busy')
	local big = string.rep('x', 16 * 1024 * 1024)
	local writer = T.go(function() return c:send(big, nil, T.deadline()) end)
	-- the writer fills the socket, then waits for it to drain; close ends both waits
	local probe = T.go(function() return c:send('y', nil, sock.clock() + 0.2) end)
	T.eq(probe(), true)  -- (its output went to the writer's queue)
	c:close()
	local rn, rerr = reader()
	T.eq(rn, nil)
	T.eq(rerr, 'closed')
	local ok, werr = writer()
	T.eq(ok, nil)
	T.eq(werr, 'closed')
	T.eq(select(2, c:recv(sock.buffer(1), 1, T.deadline())), 'closed')
	T.eq(select(2, c:send('z', nil, T.deadline())), 'closed')
	release.done()
	assert(server())
	l:close()
end, 30)

T.test('the end of the stream after a wait began: recv sees it (with and without close_notify)', function()
	for _, clean in ipairs{true, false} do
		local l, port = tls_listener()
		local step = T.latch(1)
		local server = serve_one(l, function(c)
			assert(c:send('a', nil, T.deadline()))
			step.wait(10)  -- the client waits in recv by now
			if clean then return true end
			c.tcp:close()  -- no close_notify
			return true
		end)
		local c = assert(sock.connect_tls('127.0.0.1', port, client_opt, T.deadline()))
		local buf = sock.buffer(10)
		T.eq(c:recv(buf, 10, T.deadline()), 1)
		local waiting = T.go(function() return c:recv(buf, 10, T.deadline()) end)
		step.done()
		local n, why = waiting()
		T.eq(n, 0, tostring(clean))
		T.eq(why, (not clean) and 'eof_without_close_notify' or nil, tostring(clean))
		assert(server())
		c:close()
		l:close()
	end
end)

T.test("luapower's sock_libtls: client_stcp, server_stcp, config", function()
	local tls = require'sock_libtls'
	local ltcp, port = T.listener()
	local sstcp = assert(tls.server_stcp(ltcp, tls.config(server_opt())))
	local server = T.go(function()
		local c = assert(sstcp:accept())
		local buf = sock.buffer(5)
		assert(c:recvn(buf, 5, T.deadline()))
		assert(c:send(buf:tostring():reverse(), nil, T.deadline()))
		c:close()
		return true
	end)
	local tcp = assert(sock.connect_tcp('127.0.0.1', port, {expires = T.deadline()}))
	local c = assert(tls.client_stcp(tcp, 'localhost', client_opt))
	assert(c.istlssocket)
	T.eq(c:_send('hello', 5, T.deadline()), 5)
	local read = assert(c:recvall_read(T.deadline()))
	T.eq(read(), 'olleh')
	assert(server())
	c:close()
	T.eq(c:closed(), true)
	sstcp:close()
end)

-- Real peers --------------------------------------------------------------------

-- These start the peers as processes through sh (and stop them with kill):
-- not on Windows (under Wine, where they would be Linux programs, neither).
local peer_opts = T.not_on_windows('the peer (openssl s_server, curl) is a process started through sh')

-- A free port: bound, read, released (another process may take it between,
-- in which case the peer fails to start and the test says so).
local function free_port()
	local l, port = T.listener()
	l:close()
	return port
end

-- Run a shell command in the background; its pid.
local function spawn(cmd, name)
	local pidfile = scratch(name .. '.pid')
	-- (a sanitizer build preloads its runtime into the interpreter: not into the peers)
	sh('(unset LD_PRELOAD; ' .. cmd .. ') >' .. scratch(name .. '.log') .. ' 2>&1 & echo $! >' .. pidfile)
	return assert(tonumber(readfile(pidfile)))
end

-- Connect with retries until the peer listens, within the deadline.
local function wait_listening(port, expires)
	while true do
		local s = sock.connect_tcp('127.0.0.1', port, {expires = expires})
		if s then
			s:close()
			return true
		end
		if sock.clock() > expires then return false end
		sock.sleep(0.02)  -- (a retry interval, not a synchronization)
	end
end

T.test('sock client against openssl s_server', function()
	local port = free_port()
	local pid = spawn('exec openssl s_server -accept 127.0.0.1:' .. port .. ' -cert ' .. path('server.pem')
		.. ' -key ' .. path('server.key') .. ' -rev -naccept 2', 's_server')
	local ok, err = sock.pcall(function()
		assert(wait_listening(port, T.deadline()), 'openssl s_server did not start: ' .. tostring(readfile(scratch('s_server.log'))))
		local c = assert(sock.connect_tls('localhost', port, client_opt, T.deadline()))
		T.eq(c:peer_certificate().subject, 'CN=localhost')
		assert(c:send('hello openssl\n', nil, T.deadline()))
		T.eq(c:readline(T.deadline()), 'lssnepo olleh')
		c:close()
	end)
	os.execute('kill ' .. pid .. ' 2>/dev/null')
	assert(ok, err)
end, peer_opts)

T.test('curl against a sock TLS server: HTTP/1.1, keep-alive, several requests', function()
	local l, port = tls_listener(server_opt())
	local connections, requests = 0, 0
	local server = T.go(function()
		local c = l:accept(T.deadline())
		if not c then return end  -- (curl's failure is reported below)
		connections = connections + 1
		while true do
			local line, err = c:readline(T.deadline())
			if not line then break end
			local target = assert(line:match('^GET (%S+) HTTP/1%.1$'), line)
			repeat line = assert(c:readline(T.deadline())) until line == ''
			requests = requests + 1
			local body = 'you asked for ' .. target .. '\n'
			assert(c:send('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ' .. #body .. '\r\n\r\n' .. body,
				nil, T.deadline()))
		end
		c:close()
	end)
	local url = 'https://localhost:' .. port
	local rcfile = scratch('curl.rc')
	spawn('curl -sS --cacert ' .. path('ca.pem') .. ' --resolve localhost:' .. port .. ':127.0.0.1 '
		.. url .. '/a ' .. url .. '/b ' .. url .. '/c >' .. scratch('curl.out') .. '; echo $? >' .. rcfile, 'curl')
	local ok, err = sock.pcall(function()
		local expires = T.deadline()
		while not readfile(rcfile) or readfile(rcfile) == '' do
			assert(sock.clock() < expires, 'curl did not finish')
			sock.sleep(0.02)  -- (polling for the exit status of another process)
		end
		T.eq(tonumber(readfile(rcfile)), 0, 'curl exit status: ' .. tostring(readfile(scratch('curl.log'))))
		T.eq(readfile(scratch('curl.out')), 'you asked for /a\nyou asked for /b\nyou asked for /c\n')
	end)
	l:close()  -- (also ends the accept when curl failed)
	server()
	assert(ok, err)
	T.eq(requests, 3)
	T.eq(connections, 1)
end, peer_opts)

if dir then sh('rm -rf ' .. dir) end
T.done()
