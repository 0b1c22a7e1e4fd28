-- An echo server that serves many connections at once, one sock thread per
-- connection.
--
--   lua echo_server.lua [port]        serve on 127.0.0.1:port until killed
--   lua echo_server.lua --demo        serve on a free port, run 20 clients
--                                     against it, print what they exchanged, stop
local sock = require'sock'

local demo = arg[1] == '--demo'
local port = tonumber(arg[1]) or 0

local function serve_client(c)
	local buf = sock.buffer(16384)
	while true do
		local n, err = c:recv(buf, #buf, sock.clock() + 60)
		if not n or n == 0 then break end
		if not c:send(buf, n, sock.clock() + 60) then break end
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
			sock.thread(serve_client, c)
		end
	end
end

local function client(id, port, results)
	local c = assert(sock.tcp())
	assert(c:connect('127.0.0.1', port, sock.clock() + 5))
	local msg = ('hello from client %d'):format(id)
	assert(c:send(msg, nil, sock.clock() + 5))
	local buf = sock.buffer(#msg)
	assert(c:recvn(buf, #msg, sock.clock() + 5))
	results[id] = buf:tostring()
	c:close()
end

sock.run(function()
	local listener = assert(sock.tcp())
	assert(listener:setopt('reuseaddr', true))
	assert(listener:listen('127.0.0.1', port))
	local bound = listener:getsockname():port()
	print(('echo server on 127.0.0.1:%d (%s backend)'):format(bound, sock.backend()))
	if not demo then return server(listener) end

	sock.thread(server, listener)
	local results, pending = {}, 20
	local all_done = sock.sleep_job()  -- the last client wakes us
	for id = 1, 20 do
		sock.thread(function()
			client(id, bound, results)
			pending = pending - 1
			if pending == 0 then all_done:wakeup() end
		end)
	end
	if pending > 0 then all_done:sleep(5) end
	for id = 1, 20 do print(('client %2d got back: %s'):format(id, results[id] or '(nothing)')) end
	listener:close()
	assert(pending == 0, 'some clients did not finish')
	print('all 20 clients got their echo')
end)
