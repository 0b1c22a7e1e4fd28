-- Signals and the forgotten loop: Ctrl-C stops a program waiting in the
-- loop, and a program that starts threads but never runs the loop is told.
local T = require'testlib'
local child = require'child'

T.plain('SIGINT stops a program waiting in the loop with "interrupted!"', function()
	local ready = T.tmpname()
	os.remove(ready)
	-- Job control (set -m), so the background child does not ignore SIGINT
	-- as non-interactive shells make their background jobs do.
	local script = table.concat({
		'set -m',
		child.quote(child.interpreter) .. ' ' .. child.quote(child.dir .. '/children/sigint.lua')
			.. ' ' .. child.quote(ready) .. ' & pid=$!',
		'for i in $(seq 200); do [ -e ' .. child.quote(ready) .. ' ] && break; sleep 0.01; done',
		'start=$(date +%s%N)',
		'kill -INT $pid',
		'wait $pid; status=$?',
		'echo "status $status elapsed_ms $(( ($(date +%s%N) - start) / 1000000 ))"',
	}, '\n')
	local p = assert(io.popen('bash -c ' .. child.quote(script) .. ' 2>&1'))
	local out = p:read('*a')
	p:close()
	os.remove(ready)
	assert(out:find('interrupted!', 1, true), out)
	assert(not out:find('not interrupted', 1, true), out)
	local status, elapsed = out:match('status (%d+) elapsed_ms (%d+)')
	assert(status, out)
	assert(tonumber(status) ~= 0, out)
	assert(tonumber(elapsed) < 2000, 'took ' .. elapsed .. ' ms to stop:\n' .. out)
end, T.not_on_windows('SIGINT sent by kill to a child process is POSIX (Windows has console control events)'))

T.plain('a program that starts threads and never runs the loop is warned at exit', function()
	local status, out = child.run('never_started.lua')
	T.eq(status, 0, out)
	assert(out:find('end of script', 1, true), out)
	assert(not out:find('never printed', 1, true), out)
	assert(out:find('sock: the program ended with 1 thread(s) waiting, and the loop never ran', 1, true), out)
end)

T.done()
