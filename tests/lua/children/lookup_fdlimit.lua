-- Run under a low fd limit (ulimit -n): a name lookup made while the
-- process has no fd left (glibc cannot open /etc/hosts) reports
-- 'too_many_open_files', inside a thread (on the resolver's workers) and
-- outside (on the calling thread), every time; once fds are back it works.
local sock = require'sock'

sock.backend()  -- the poller's fd, made before the fds run out
collectgarbage('stop')  -- (as in fdlimit.lua: no finalizers while no fd is free)

local function use_up_fds()
	local hog = {}
	while true do
		local u, err = sock.udp()
		if not u then
			assert(err == 'too_many_open_files', 'creating a socket: ' .. tostring(err))
			return hog
		end
		hog[#hog + 1] = u
		assert(#hog < 100000, 'no fd limit?')
	end
end

local function free(hog)
	for _, u in ipairs(hog) do u:close() end
end

local function report(where)
	for i = 1, 2 do
		local ai, err = sock.addr('localhost', 80, 'tcp')
		print(('%s %d: %s'):format(where, i, ai and 'resolved' or tostring(err)))
	end
end

-- The resolver's worker threads, started while fds are there: the
-- sanitizer runtime cannot check a thread started with none left (see
-- docs/reliability.md), and a lookup starts one when every worker is busy.
sock.run(function()
	local prev = sock._resolver_delay(0.05)  -- so that four lookups overlap
	local done = 0
	for _ = 1, 4 do
		sock.thread(function()
			assert(sock.addr('localhost', 80, 'tcp'))
			done = done + 1
		end)
	end
	while done < 4 do sock.sleep(0.01) end
	sock._resolver_delay(prev)
	assert(select(2, sock._resolver_stats()) == 4, 'four workers')
end)

sock.run(function()
	local hog = use_up_fds()
	report('in a thread')
	free(hog)
	local ai = sock.addr('localhost', 80, 'tcp')
	print('in a thread, fds back: ' .. (ai and 'resolved' or 'failed'))
end)

local hog = use_up_fds()
report('outside threads')
free(hog)
print('outside threads, fds back: ' .. (sock.addr('localhost', 80, 'tcp') and 'resolved' or 'failed'))
collectgarbage('restart')
