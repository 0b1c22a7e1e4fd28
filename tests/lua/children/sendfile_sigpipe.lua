-- sendfile(2) cannot be told not to raise SIGPIPE: s:sendfile blocks it for
-- the call and takes back the one the call raised. A SIGPIPE sent to the
-- process meanwhile is the process's, and must reach it.
--
--   sendfile_sigpipe.lua own      sendfile to a peer that has gone: 'broken_pipe', no signal left
--   sendfile_sigpipe.lua foreign  another process sends SIGPIPE while sendfile has it blocked
--
-- The parent runs it with SIGPIPE at its default disposition (the foreign
-- one must kill the child: status 141) or blocked (`env --block-signal`: it
-- must stay pending, which /proc/self/status shows).
local sock = require'sock'
local mode = assert(arg[1], 'mode: own or foreign')
io.stdout:setvbuf('no')

local function pid()
	local f = assert(io.open('/proc/self/stat'))
	local p = f:read('*l'):match('^(%d+)')
	f:close()
	return p
end

-- Whether SIGPIPE (13, bit 12) is pending for the main thread (SigPnd) or
-- for the process (ShdPnd). Only the last hex digits matter (5.1 has no
-- integers past 2^53).
local function pending(field)
	local f = assert(io.open('/proc/self/status'))
	local text = f:read('*a')
	f:close()
	local mask = tonumber(assert(text:match(field .. ':%s*(%x+)')):sub(-4), 16)
	return math.floor(mask / 4096) % 2 == 1
end

local path = os.tmpname()
local f = assert(io.open(path, 'wb'))
f:write(('x'):rep(1000))
f:close()

sock.run(function()
	local a, b = assert(sock.socketpair())
	if mode == 'own' then
		b:close()
		local sent, err = a:sendfile(path, nil, nil, sock.clock() + 5)
		print('own: ' .. tostring(sent or err))
	else
		-- Each sendfile(2) now waits 1 s with SIGPIPE blocked before it runs;
		-- the signal comes from another process, which the kernel notes.
		sock._sendfile_signal_window(1)
		assert(os.execute('(sleep 0.25; kill -PIPE ' .. pid() .. ') &'))
		local sent, err = a:sendfile(path, nil, nil, sock.clock() + 5)
		print('foreign: sent ' .. tostring(sent or err))
	end
	a:close()
	if not b:closed() then b:close() end
end)
os.remove(path)
print('thread SIGPIPE pending: ' .. tostring(pending('SigPnd')))
print('process SIGPIPE pending: ' .. tostring(pending('ShdPnd')))
print('survived')
