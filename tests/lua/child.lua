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
-- interpreter on its command line. Both are POSIX shell: on Windows, where
-- the command runs through cmd.exe, child.run refuses them (the tests that
-- need them are skipped there).
local M = {}

M.windows = package.config:sub(1, 1) == '\\'

local function quote(s)
	if M.windows then
		-- cmd.exe and the C runtime's argument parser: double quotes, and no
		-- argument of these tests holds one
		s = tostring(s)
		assert(not s:find('"', 1, true), 'child.quote: a double quote in an argument on Windows')
		return '"' .. s .. '"'
	end
	return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = quote

-- The directory of the running test file, and the interpreter running it.
M.dir = (arg and arg[0] and arg[0]:match('^(.*)[/\\]')) or '.'
do
	local i = -1
	while arg and arg[i - 1] ~= nil do i = i - 1 end
	M.interpreter = arg and arg[i] or 'lua'
end

-- Returns the child's exit status (a number; 128 + n when signal n killed
-- it) and everything it wrote to stdout and stderr.
function M.run(script, opts, ...)
	opts = opts or {}
	if M.windows then
		assert(not opts.shell and not opts.wrap, 'child.run: opts.shell and opts.wrap are POSIX shell, not for Windows')
		-- cmd /v:on: !ERRORLEVEL! is read after the child ran (%ERRORLEVEL%
		-- would be read when the line is parsed). The outer quotes are
		-- cmd /c's own: it strips the first and the last.
		local cmd = {quote(M.interpreter), quote(M.dir .. '\\children\\' .. script)}
		for i = 1, select('#', ...) do cmd[#cmd + 1] = quote((select(i, ...))) end
		return M.shell(table.concat(cmd, ' '))
	end
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

-- Windows: runs a command line through cmd.exe and returns its exit status
-- and everything it wrote to stdout and stderr. (os.execute cannot tell the
-- status there: the C runtime's system() leaves a stale errno, which Lua
-- reports instead of the status.) cmd /c strips the outer quotes.
function M.shell(line)
	assert(M.windows, 'child.shell is for Windows')
	local p = assert(io.popen('cmd /v:on /c "' .. line .. ' 2>&1 & echo child exit status: !ERRORLEVEL!"'))
	local out = p:read('*a')
	p:close()
	out = out:gsub('\r\n', '\n')
	return tonumber(out:match('child exit status: (%d+)%s*$')), out
end

-- Windows: starts a command line in the background through cmd.exe (start
-- /b), its output into out_file; returns at once.
function M.background(line, out_file)
	assert(M.windows, 'child.background is for Windows')
	local p = assert(io.popen('start "" /b cmd /c "' .. line .. ' > ' .. quote(out_file) .. ' 2>&1"'))
	p:read('*a')
	p:close()
end

return M
