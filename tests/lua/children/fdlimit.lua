-- Run under a low fd limit (ulimit -n): when the process runs out of fds,
-- accept returns nil, 'too_many_open_files' at once (it neither hangs nor
-- spins), the connections waiting in the backlog are not lost, and a server
-- loop that waits for fds to come back goes on serving them.
local sock = require'sock'

local function deadline() return sock.clock() + 5 end

sock.run(function()
	local l = assert(sock.tcp())
	assert(l:listen('127.0.0.1', 0))
	local port = l:getsockname():port()

	-- Clients connect first: their connections wait in the listener's backlog.
	local clients = {}
	for i = 1, 3 do
		clients[i] = assert(sock.tcp())
		assert(clients[i]:connect('127.0.0.1', port, deadline()))
	end

	-- Use up every fd that is left. While none is free, the collector is
	-- stopped: in the sanitizer build UBSan's vptr check misfires when the
	-- process has no fd to spare (the runtime probes memory through a pipe),
	-- and finalizers (shared_ptr releases in ai objects) would trigger it.
	collectgarbage('stop')
	local hog = {}
	while true do
		local u, err = sock.udp()
		if not u then
			assert(err == 'too_many_open_files', 'creating a socket: ' .. tostring(err))
			break
		end
		hog[#hog + 1] = u
		assert(#hog < 100000, 'no fd limit?')
	end
	print(('fds used up after %d more sockets'):format(#hog))

	-- accept fails at once, and again: nothing waits, nothing spins.
	for _ = 1, 2 do
		local t0 = sock.clock()
		local s, err = l:accept(deadline())
		assert(s == nil and err == 'too_many_open_files', 'accept: ' .. tostring(s) .. ' ' .. tostring(err))
		assert(sock.clock() - t0 < 1, 'accept waited')
	end
	print('accept: too_many_open_files')

	-- A server loop that waits for fds when out of them.
	local fds_back = sock.sleep_job()
	local served, out_of_fds = 0, 0
	sock.thread(function()
		while served < 3 do
			local s, err = l:accept(deadline())
			if s then
				local buf = sock.buffer(16)
				local n = assert(s:recv(buf, 16, deadline()))
				assert(s:send(buf, n, deadline()))
				s:close()
				served = served + 1
			elseif err == 'too_many_open_files' then
				out_of_fds = out_of_fds + 1
				fds_back:sleep(5)
			else
				error('accept: ' .. tostring(err))
			end
		end
	end)
	assert(out_of_fds == 1, 'the server did not see the fd shortage')
	for _ = 1, 3 do table.remove(hog):close() end
	fds_back:wakeup()
	collectgarbage('restart')

	-- Every client that waited in the backlog is served.
	for i = 1, 3 do
		assert(clients[i]:send('ping ' .. i, nil, deadline()))
		local buf = sock.buffer(16)
		local n = assert(clients[i]:recv(buf, 16, deadline()))
		assert(buf:tostring(1, n) == 'ping ' .. i, buf:tostring(1, n))
		clients[i]:close()
	end
	assert(served == 3)
	for _, u in ipairs(hog) do u:close() end
	l:close()
	print('served 3 clients after the shortage')
end)
print('fdlimit ok')
