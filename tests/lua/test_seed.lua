-- A program written only from the luapower sock document (seed 000), using
-- the API exactly as documented there, as a user of that library would.
local T = require'testlib'
local sock = require'sock'

T.plain('the documented program runs', function()
	local ai = assert(sock.addr('127.0.0.1', 0, 'tcp', 'inet', 'tcp', 'passive'))
	assert(ai:type() == 'tcp' and ai:family() == 'inet' and ai:protocol() == 'tcp')
	for a in ai:addrs() do assert(a:tostring()) end
	assert(ai.addr:family() == 'inet')
	local ip = ai.addr:addr()
	local bin, len = ip:tobinary()
	assert(len == 4 and #bin == 4)
	assert(ip:tostring() == '127.0.0.1')
	ai:free()

	local log = {}
	local server = sock.tcp()
	server:setopt('so_reuseaddr', true)
	server:listen('127.0.0.1', 0)  -- backlog defaults to the maximum
	local port = server:getsockname():port()

	local function handler(c)
		local buf = sock.buffer(1024)
		local b, n = c:recvn(buf, 5, sock.clock() + 5)
		log[#log + 1] = 'server got ' .. buf:tostring(1, n)
		assert(c:send(buf, n, sock.clock() + 5))
		c:shutdown'w'
		local _, len = c:recvall(sock.clock() + 5)
		log[#log + 1] = 'server drained ' .. len
		c:close()
	end

	sock.newthread(function()  -- started with resume, as the document shows
		local c = server:accept(sock.clock() + 5)
		handler(c)
		server:close()
	end)
	local accepter = sock.newthread(function()
		local c = server:accept(sock.clock() + 5)
		handler(c)
		server:close()
	end)
	sock.resume(accepter)

	local finished = false
	sock.thread(function()
		local c = sock.tcp()
		assert(c:connect('127.0.0.1', port, sock.clock() + 5))
		assert(c:send('hello') == true)
		local buf = sock.buffer(5)
		local b, n = c:recvn(buf, 5, sock.clock() + 5)
		log[#log + 1] = 'client got ' .. buf:tostring(1, n)
		local _, len = c:recvall(sock.clock() + 5)  -- until the server's FIN
		log[#log + 1] = 'client saw close after ' .. len
		c:close()
		local sj = sock.sleep_job()
		sock.runafter(0.01, function() sj:wakeup('timer fired') end)
		local msg = sj:sleep(5)
		log[#log + 1] = msg
		finished = true
	end)
	sock.start()
	assert(finished)
	-- The server's drain and the client's 10 ms timer both follow the
	-- client's close: which comes first depends on how fast the machine is
	-- (under valgrind, a turn may take longer than the timer).
	T.eq(table.concat(log, '; ', 1, 3), 'server got hello; client got hello; client saw close after 0')
	local rest = {log[4], log[5]}
	table.sort(rest)
	T.eq(#log, 5)
	T.eq(table.concat(rest, '; '), 'server drained 0; timer fired')
end)

T.done()
