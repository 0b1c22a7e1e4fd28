-- UDP ping/pong: one socket answers every datagram it gets with a "pong",
-- another sends pings and waits for each answer with a deadline.
--
--   lua udp_pingpong.lua serve [port]           answer pings on 127.0.0.1:port
--   lua udp_pingpong.lua ping host port [count]  ping a server
--   lua udp_pingpong.lua --demo                  both in one process on
--                                                loopback, then stop
local sock = require'sock'

-- The server: each datagram comes with its sender's address (an sa object),
-- which sendto takes in place of host, port.
local function serve(u)
	local buf = sock.buffer(2048)
	while true do
		local n, from = u:recvnext(buf, #buf)
		if not n then return end  -- 'closed': the demo is over
		local msg = buf:tostring(1, n)
		local reply = msg:gsub('^ping', 'pong')
		u:sendto(from, nil, reply)
	end
end

-- One ping: send, then wait for the answer until `timeout` seconds from now.
-- UDP does not tell anyone that a datagram was lost; the deadline is how the
-- client notices.
local function ping(u, host, port, seq, timeout)
	local msg = 'ping ' .. seq
	local t0 = sock.clock()
	local ok, err = u:sendto(host, port, msg)
	if not ok then return nil, err end
	local buf = sock.buffer(2048)
	local n, err = u:recv(buf, #buf, t0 + timeout)
	if not n then return nil, err end
	return buf:tostring(1, n), sock.clock() - t0
end

local mode = arg[1]

if mode == 'serve' then
	sock.run(function()
		local u = assert(sock.udp())
		assert(u:bind('127.0.0.1', tonumber(arg[2]) or 0))
		print(('udp ping/pong server on %s'):format(u:getsockname():tostring()))
		serve(u)
	end)
elseif mode == 'ping' then
	local host, port, count = arg[2], tonumber(arg[3]), tonumber(arg[4]) or 5
	assert(host and port, 'usage: lua udp_pingpong.lua ping host port [count]')
	sock.run(function()
		local u = assert(sock.udp())
		for seq = 1, count do
			local reply, rtt = ping(u, host, port, seq, 1)
			if reply then
				print(('%s from %s:%d in %.3f ms'):format(reply, host, port, rtt * 1000))
			else
				print(('ping %d: %s'):format(seq, rtt))
			end
			sock.sleep(0.5)
		end
		u:close()
	end)
elseif mode == '--demo' then
	sock.run(function()
		local server = assert(sock.udp())
		assert(server:bind('127.0.0.1', 0))
		local port = server:getsockname():port()
		print(('server: answering on 127.0.0.1:%d'):format(port))
		sock.thread(serve, server)

		-- Five pings with sendto + recv, each with a 1 second deadline.
		local client = assert(sock.udp())
		local answered = 0
		for seq = 1, 5 do
			local reply, rtt = ping(client, '127.0.0.1', port, seq, 1)
			assert(reply, rtt)
			assert(reply == 'pong ' .. seq, 'unexpected reply: ' .. reply)
			answered = answered + 1
			print(('client: %s in %.3f ms'):format(reply, rtt * 1000))
		end

		-- A connected UDP socket: send/recv without addresses, and only the
		-- connected peer's datagrams get through.
		local connected = assert(sock.udp())
		assert(connected:connect('127.0.0.1', port))
		assert(connected:send('ping connected'))
		local buf = sock.buffer(64)
		local n = assert(connected:recv(buf, #buf, sock.clock() + 1))
		print(('client (connected socket): %s'):format(buf:tostring(1, n)))
		assert(buf:tostring(1, n) == 'pong connected')
		connected:close()

		-- A ping nobody answers: a port with no server behind it. The
		-- deadline ends the wait.
		local silent = assert(sock.udp())
		assert(silent:bind('127.0.0.1', 0))
		local silent_port = silent:getsockname():port()
		local reply, err = ping(client, '127.0.0.1', silent_port, 6, 0.1)
		assert(reply == nil and err == 'timeout', 'expected a timeout, got ' .. tostring(reply or err))
		print(('client: ping to 127.0.0.1:%d (nobody answers) -> %s after 0.1 s'):format(silent_port, err))
		silent:close()

		client:close()
		server:close()  -- wakes the server thread with 'closed'
		print(('udp ping/pong demo done: %d of 5 pings answered, 1 timed out as expected'):format(answered))
	end)
else
	io.stderr:write('usage: lua udp_pingpong.lua serve [port] | ping host port [count] | --demo\n')
	os.exit(2)
end
