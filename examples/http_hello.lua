-- A tiny HTTP/1.1 server with keep-alive, one sock thread per connection,
-- reading requests with the buffered reads (s:readline for the request and
-- header lines, s:readn for a body).
--
--   lua http_hello.lua [port]     serve on 127.0.0.1:port until killed
--   lua http_hello.lua --demo     serve on a free loopback port, make a few
--                                 requests over one keep-alive connection
--                                 with a client written with sock, print
--                                 them, and stop
local sock = require'sock'

local demo = arg[1] == '--demo'
local port = tonumber(arg[1]) or 0

local IDLE = 30        -- seconds a keep-alive connection may sit idle
local MAX_LINE = 8192  -- longest request or header line

-- Read one request: {method, target, version, headers, body} | nil, err
local function read_request(c, expires)
	local line, err = c:readline(expires)
	if not line then return nil, err end
	local method, target, version = line:match('^(%u+) (%S+) HTTP/(%d%.%d)$')
	if not method then return nil, 'bad_request' end
	local headers = {}
	while true do
		local h, herr = c:readline(expires)
		if not h then return nil, herr end
		if h == '' then break end
		local name, value = h:match('^([^:%s]+):%s*(.-)%s*$')
		if not name then return nil, 'bad_request' end
		headers[name:lower()] = value
	end
	local body = ''
	local len = headers['content-length']
	if len then
		len = tonumber(len)
		if not len or len < 0 or len > 1e6 then return nil, 'bad_request' end
		body, err = c:readn(len, expires)
		if not body then return nil, err end
	end
	return {method = method, target = target, version = version, headers = headers, body = body}
end

local function respond(c, status, reason, body, keep_alive)
	local head = ('HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: %s\r\n\r\n')
		:format(status, reason, #body, keep_alive and 'keep-alive' or 'close')
	return c:send(head .. body, nil, sock.clock() + IDLE)
end

local function wants_keep_alive(req)
	local conn = (req.headers.connection or ''):lower()
	if req.version == '1.0' then return conn == 'keep-alive' end
	return conn ~= 'close'
end

-- After an error response, stop sending but read what the client still
-- sends for a moment: closing with unread data would reset the connection,
-- and the client could lose the response.
local function lingering_close(c)
	c:shutdown('w')
	local expires = sock.clock() + 1
	while c:read(nil, expires) do end
	c:close()
end

local function serve(c)
	c:setmaxline(MAX_LINE)
	local served = 0
	while true do
		local req, err = read_request(c, sock.clock() + IDLE)
		if not req then
			if err == 'too_long' or err == 'bad_request' then
				if err == 'too_long' then
					respond(c, 431, 'Request Header Fields Too Large', 'line too long\n', false)
				else
					respond(c, 400, 'Bad Request', 'bad request\n', false)
				end
				return lingering_close(c)
			end
			break  -- eof, timeout, closed, ...: just hang up
		end
		served = served + 1
		local keep = wants_keep_alive(req)
		local body = ('Hello from sock! %s %s, request %d on this connection%s\n')
			:format(req.method, req.target, served, #req.body > 0 and (', body: ' .. req.body) or '')
		if not respond(c, 200, 'OK', body, keep) or not keep then break end
	end
	c:close()
end

local function server(listener)
	while true do
		local c, err = listener:accept()
		if not c then
			if err == 'closed' then return end  -- the demo closed the listener
			io.stderr:write('accept: ', err, '\n')
		else
			sock.thread(serve, c)
		end
	end
end

-- The demo's client: read one response off a keep-alive connection.
local function read_response(c, expires)
	local status_line = assert(c:readline(expires))
	local status = tonumber(status_line:match('^HTTP/1%.1 (%d%d%d) '))
	local headers = {}
	while true do
		local h = assert(c:readline(expires))
		if h == '' then break end
		local name, value = h:match('^([^:]+):%s*(.-)%s*$')
		headers[name:lower()] = value
	end
	local body = assert(c:readn(tonumber(headers['content-length']), expires))
	return status, headers, body
end

local function run_demo(bound)
	local expires = sock.clock() + 10
	local c = assert(sock.connect_tcp('127.0.0.1', bound, {nodelay = true, expires = expires}))
	local requests = {
		'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n',
		'GET /hello?name=lua HTTP/1.1\r\nHost: localhost\r\nUser-Agent: sock-demo\r\n\r\n',
		'POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhowdy',
		'GET /bye HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
	}
	local ok = 0
	for i, req in ipairs(requests) do
		assert(c:send(req, nil, expires))
		local status, headers, body = read_response(c, expires)
		io.write(('response %d: %d, connection: %s, body: %s'):format(i, status, headers.connection, body))
		local last = i == #requests
		if status == 200 and body:find('request ' .. i .. ' on this connection', 1, true)
			and headers.connection == (last and 'close' or 'keep-alive') then
			ok = ok + 1
		end
	end
	-- the server hung up after the last one, as asked
	local _, err = c:readline(expires)
	assert(err == 'eof', err)
	c:close()

	-- a header line over the server's limit gets 431 and a closed connection
	local c2 = assert(sock.connect_tcp('127.0.0.1', bound, {expires = expires}))
	assert(c2:send('GET / HTTP/1.1\r\nX-Long: ' .. ('x'):rep(MAX_LINE) .. '\r\n\r\n', nil, expires))
	local status = read_response(c2, expires)
	print(('oversized header line: %d'):format(status))
	c2:close()

	assert(ok == #requests and status == 431, 'unexpected responses')
	print(('demo done: %d requests on one keep-alive connection, all answered'):format(ok))
end

sock.run(function()
	local listener = assert(sock.listen_tcp('127.0.0.1', port))
	local bound = listener:getsockname():port()
	print(('http server on http://127.0.0.1:%d/ (%s backend)'):format(bound, sock.backend()))
	if not demo then return server(listener) end
	sock.thread(server, listener)
	run_demo(bound)
	listener:close()  -- ends the server thread; sock.run returns once all are done
end)
