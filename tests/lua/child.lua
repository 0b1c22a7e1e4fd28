-- Runs a script of children/ in a child process of the same interpreter, for
-- the tests that need a process of their own (a lower fd limit, default
-- signal dispositions, a Lua state that closes with work pending). The child
-- inherits the environment: LUA_CPATH/LUA_PATH, SOCK_BACKEND, and in the
-- sanitizer build LD_PRELOAD and ASAN_OPTIONS, so it is checked as well.
--
--   local child = require'child'
--   local status, output = child.run('state_close.lua', {shell = 'ulimit -n 64;', wrap = 'env ...'}, args...)
--
-- opts.shell runs first in the child's shell; opts.wrap goes before the
-- interpreter on its command line.
local M = {}

local function quote(s)
	return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = quote

-- The directory of the running test file, and the interpreter running it.
M.dir = (arg and arg[0] and arg[0]:match('^(.*)/')) or '.'
do
	local i = -1
	while arg and arg[i - 1] ~= nil do i = i - 1 end
	M.interpreter = arg and arg[i] or 'lua'
end

-- Returns the child's exit status (a number; 128 + n when signal n killed
-- it) and everything it wrote to stdout and stderr.
function M.run(script, opts, ...)
	opts = opts or {}
	local cmd = {'exec'}
	if opts.wrap then cmd[#cmd + 1] = opts.wrap end
	cmd[#cmd + 1] = quote(M.interpreter)
	cmd[#cmd + 1] = quote(M.dir .. '/children/' .. script)
	for i = 1, select('#', ...) do cmd[#cmd + 1] = quote((select(i, ...))) end
	local line = '( ' .. (opts.shell or '') .. ' ' .. table.concat(cmd, ' ') .. ' ) 2>&1; echo "child exit status: $?"'
	local p = assert(io.popen(line))
	local out = p:read('*a')
	p:close()
	local status = tonumber(out:match('child exit status: (%d+)%s*$'))
	return status, out
end

return M
