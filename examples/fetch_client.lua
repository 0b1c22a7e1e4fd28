-- An HTTP client with deadlines: one absolute deadline (a sock.clock() value)
-- covers the whole fetch - connect, send and every recv - so a fetch never
-- takes longer than asked, however the time is spent.
--
--   lua fetch_client.lua http://127.0.0.1:8080/path [timeout]
--                               fetch a URL (plain HTTP, numeric or local host)
--   lua fetch_client.lua --demo  start a small local server, fetch from it
--                               (in sequence, in parallel, from a server too
--                               slow for the deadline, from a closed port),
--                               print what happened, stop
local sock = require'sock'

-- GET path from host:port; returns status, body | nil, err.
local function fetch(host, port, path, deadline)
	local c = assert(sock.tcp())
	local ok, err = c:connect(host, port, deadline)
	if ok then
		ok, err = c:send(('GET %s HTTP/1.0\r\nHost: %s\r\n\r\n'):format(path, host), nil, deadline)
	end
	local parts = {}
	if ok then
		local buf = sock.buffer(16384)
		while true do  -- HTTP/1.0: the body ends when the server closes
			local n, rerr = c:recv(buf, #buf, deadline)
			if not n then ok, err = nil, rerr break end
			if n == 0 then break end
			parts[#parts + 1] = buf:tostring(1, n)
		end
	end
	c:close()
	if not ok then return nil, err end
	local response = table.concat(parts)
	local status, body = response:match('^HTTP/1%.[01] (%d%d%d)[^\r\n]*\r\n.-\r\n\r\n(.*)$')
	if not status then return nil, 'bad response' end
	return tonumber(status), body
end

-- The demo's server: /hello, /big (256 KiB), and /slow, which answers only
-- when the client has gone away.
local function serve_one(c)
	local buf = sock.buffer(4096)
	local request = ''
	while not request:find('\r\n\r\n', 1, true) do
		local n = c:recv(buf, #buf, sock.clock() + 5)
		if not n or n == 0 then c:close() return end
		request = request .. buf:tostring(1, n)
	end
	local path = request:match('^GET (%S+)')
	local body
	if path == '/hello' then
		body = 'hello from the local server'
	elseif path == '/big' then
		body = ('0123456789abcdef'):rep(16384)
	elseif path == '/slow' then
		c:recv(buf, 1, sock.clock() + 5)  -- stalls until the client gives up
		c:close()
		return
	end
	local status = body and '200 OK' or '404 Not Found'
	body = body or 'not found'
	c:send(('HTTP/1.0 %s\r\nContent-Length: %d\r\n\r\n%s'):format(status, #body, body), nil, sock.clock() + 5)
	c:close()
end

local function demo()
	sock.run(function()
		local listener = assert(sock.tcp())
		assert(listener:listen('127.0.0.1', 0))
		local port = listener:getsockname():port()
		print(('server: listening on 127.0.0.1:%d'):format(port))
		sock.thread(function()
			while true do
				local c = listener:accept()
				if not c then return end  -- closed at the end of the demo
				sock.thread(serve_one, c)
			end
		end)

		local expected = 0
		local function check(cond, what)
			assert(cond, what)
			expected = expected + 1
		end

		-- 1. One fetch, one deadline for all of it.
		local status, body = fetch('127.0.0.1', port, '/hello', sock.clock() + 2)
		print(('GET /hello -> %s: %s'):format(status, body))
		check(status == 200 and body == 'hello from the local server', '/hello')

		-- 2. A body that takes many recv calls.
		status, body = fetch('127.0.0.1', port, '/big', sock.clock() + 2)
		print(('GET /big -> %s, %d bytes'):format(status, body and #body or 0))
		check(status == 200 and #body == 16 * 16384, '/big')

		-- 3. Five fetches at once, one thread each, sharing one deadline. The
		-- last one to finish wakes this thread.
		local deadline, done, results = sock.clock() + 2, 0, {}
		local all_done = sock.sleep_job()
		for i = 1, 5 do
			sock.thread(function()
				results[i] = fetch('127.0.0.1', port, '/hello', deadline)
				done = done + 1
				if done == 5 then all_done:wakeup() end
			end)
		end
		if done < 5 then all_done:sleep_until(deadline + 1) end
		local ok200 = 0
		for i = 1, 5 do if results[i] == 200 then ok200 = ok200 + 1 end end
		print(('5 parallel GET /hello -> %d answered 200'):format(ok200))
		check(ok200 == 5, 'parallel fetches')

		-- 4. A server slower than the deadline: the fetch gives up on time.
		local t0 = sock.clock()
		status, body = fetch('127.0.0.1', port, '/slow', t0 + 0.2)
		local took = sock.clock() - t0
		print(('GET /slow with a 0.2 s deadline -> %s, %s after %.2f s'):format(tostring(status), body, took))
		check(status == nil and body == 'timeout' and took >= 0.19 and took < 1.5, '/slow')

		-- 5. Nobody listening: the normalized error name, not OS text.
		local probe = assert(sock.tcp())
		assert(probe:bind('127.0.0.1', 0))
		local closed_port = probe:getsockname():port()
		probe:close()
		status, body = fetch('127.0.0.1', closed_port, '/hello', sock.clock() + 2)
		print(('GET /hello from closed port %d -> %s, %s'):format(closed_port, tostring(status), body))
		check(status == nil and body == 'connection_refused', 'closed port')

		listener:close()
		print(('fetch demo done: %d of 5 checks as expected'):format(expected))
	end)
end

if arg[1] == '--demo' then
	demo()
elseif arg[1] then
	local host, port, path = arg[1]:match('^http://([^/:]+):?(%d*)(.*)$')
	if not host then
		io.stderr:write('only plain http:// URLs: ', arg[1], '\n')
		os.exit(2)
	end
	port = tonumber(port) or 80
	path = path ~= '' and path or '/'
	local timeout = tonumber(arg[2]) or 5
	local status, body = sock.run(function()
		return fetch(host, port, path, sock.clock() + timeout)
	end)
	if not status then
		io.stderr:write('fetch failed: ', body, '\n')
		os.exit(1)
	end
	print(('HTTP %d, %d bytes'):format(status, #body))
	io.write(body)
else
	io.stderr:write('usage: lua fetch_client.lua URL [timeout] | --demo\n')
	os.exit(2)
end
