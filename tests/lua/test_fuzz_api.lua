-- Fuzzes the Lua API: every public function of the module and every method
-- and metamethod of the socket, buffer, ai, sa, ip and sleep_job objects is
-- called with random arguments of every type, outside any thread (phase A)
-- and inside sock threads (phase B), each call under pcall. What is checked:
--  - the process survives (a crash fails the CTest run; the ASan build also
--    catches memory errors and UB);
--  - a raised error is a string that names the function that was called
--    (a function written in Lua may name a public function it called for
--    it, e.g. recvall -> recv; those are listed at the end of the run);
--  - a `nil, err` return carries a string err;
--  - a thread left waiting by a call is woken once the sockets it may wait on
--    are closed and the sleep jobs woken: nothing stays waiting for ever;
--  - no fd is left open at the end (testlib's check).
--
-- Deterministic: the seed is fixed (SOCK_FUZZ_SEED overrides it) and printed;
-- bounded by a call count (SOCK_FUZZ_CALLS) and a time (SOCK_FUZZ_SECONDS)
-- per phase, whichever ends first.
--
-- Loopback only, and nothing on disk: strings that could be taken as a host
-- name are ones the resolver rejects without sending a query (they hold a
-- '/', a '@', a '\0', ..., or are IP literals of loopback / unspecified
-- addresses), and the sockets that could bind a unix path only ever get
-- abstract names or paths under a directory that does not exist. Plain words
-- ('inet', 'reuseaddr', ...) are passed only where a function takes a name
-- and never a host (KEYWORD_ARGS). tcp_congestion is left out: as root, an
-- unknown algorithm name makes the kernel run modprobe. sock.buffer(n) gets
-- no size between 1 MiB and 2^41 (it would allocate it; the limits are
-- checked at the end), and the module's own sleeps get short times.
--
-- LuaJIT cdata is not fuzzed: a cdata pointer carries no size, so a wrong
-- length is the caller's memory error, as in C.

-- The resolver that sock.addr uses inside threads for names keeps an eventfd
-- (and worker threads) for the life of the state, made on first use: make it
-- before testlib counts the open fds. ('/...' is never sent to a DNS server.)
do
	local sock = require'sock'
	sock.run(function() sock.addr('/nonexistent-sock-fuzz/warm-up', 80) end)
end

local T = require'testlib'
local sock = T.sock

local unpack = table.unpack or unpack
local load = loadstring or load

local SEED = tonumber(os.getenv('SOCK_FUZZ_SEED') or '') or 20261123
local MAX_CALLS = tonumber(os.getenv('SOCK_FUZZ_CALLS') or '') or 20000
local MAX_SECONDS = tonumber(os.getenv('SOCK_FUZZ_SECONDS') or '') or 2
local TRACE = os.getenv('SOCK_FUZZ_TRACE') -- print each call before making it
print(('test_fuzz_api: seed %d (set SOCK_FUZZ_SEED to reproduce or vary), up to %d calls or %gs per phase')
	:format(SEED, MAX_CALLS, MAX_SECONDS))

-- Park-Miller generator: every product stays below 2^53, so each interpreter,
-- with integers or with doubles only, draws the same sequence.
local state = SEED % 2147483646 + 1
local function rand(n) -- 1..n
	state = (state * 16807) % 2147483647
	return state % n + 1
end
local function pick(t) return t[rand(#t)] end

local function pack(...) return {n = select('#', ...), ...} end

-- ---- the values ------------------------------------------------------------

local NUMBERS = {0, 1, -1, 2, 3, 7, 16, 64, 100, 1024, 65535, 65536, 0.5, -0.5, 1.5, 1e-300,
	2^31 - 1, 2^31, -2^31, 2^32, 2^53, -2^53, 2^63, -2^63, 2^64, 1e300, -1e300,
	1/0, -1/0, 0/0, -(0/0)}
if math.type then -- 5.3+: the integer subtype at its limits
	NUMBERS[#NUMBERS + 1] = math.maxinteger
	NUMBERS[#NUMBERS + 1] = math.mininteger
	NUMBERS[#NUMBERS + 1] = math.tointeger(2^62)
end

local pid = T.pid()
local HUGE = string.rep('x', 1024 * 1024) -- 1 MiB, one label: never sent to a resolver

local function binary_string()
	local n = rand(40)
	local t = {}
	for i = 1, n do t[i] = string.char(rand(256) - 1) end
	t[rand(n)] = '\0' -- a zero byte: refused as a host, a service or a path
	return table.concat(t)
end

-- Safe anywhere, even as a unix path or a host name.
local SAFE_STRINGS = {'', '/nonexistent-sock-fuzz/x', '/nonexistent-sock-fuzz/' .. string.rep('y', 200),
	'@sock-fuzz-' .. pid, '\0sock-fuzz-' .. pid, '\0', 'a\0b', HUGE, '@', '/',
	'/nonexistent-sock-fuzz/x y', '/nonexistent-sock-fuzz/a..b/c'}
-- Windows has no abstract names: there '@name' would be a path relative to
-- the working directory. A name under the missing directory instead.
local UNIX_NAME = '@sock-fuzz-' .. pid
if T.windows then
	for i = #SAFE_STRINGS, 1, -1 do
		if SAFE_STRINGS[i]:find('^@') then table.remove(SAFE_STRINGS, i) end
	end
	UNIX_NAME = '/nonexistent-sock-fuzz/sock-fuzz-' .. pid
	SAFE_STRINGS[#SAFE_STRINGS + 1] = UNIX_NAME
end
-- Hosts and ports for inet sockets: loopback, unspecified, or rejected
-- without a lookup. (Never a legacy form like '1.2.3' that would resolve
-- to an outside address.)
local INET_STRINGS = {'*', '127.0.0.1', '::1', '0.0.0.0', '::', '::ffff:127.0.0.1', '127.1',
	'::1%lo', '::1%999999', '127.0.0.1%lo', '[::1]', '127.0.0.1:80', '256.1.1.1', '1::2::3',
	'0', '80', '65535', '65536', '-1', '99999999999', ' 80', '0x50'}
-- Names, for the arguments that take names only.
local KEYWORDS = {'inet', 'inet6', 'unix', 'tcp', 'udp', 'raw', 'ip', 'ipv6', 'icmp', 'icmpv6', 'igmp',
	'passive', 'cannonname', 'canonname', 'numerichost', 'numericserv', 'all', 'v4mapped', 'addrconfig',
	'r', 'w', 'rw', 'wr', 'epoll', 'io_uring', 'lo', 'martian', 'TCP', 'INET',
	'reuseaddr', 'so_reuseaddr', 'SO_REUSEADDR', 'reuseport', 'keepalive', 'broadcast', 'linger',
	'so_linger', 'rcvbuf', 'sndbuf', 'rcvtimeo', 'sndtimeo', 'error', 'so_error', 'type', 'so_type',
	'domain', 'protocol', 'peercred', 'bindtodevice', 'so_bindtodevice', 'acceptconn', 'priority',
	'tcp_nodelay', 'nodelay', 'keepidle', 'keepintvl', 'keepcnt',
	'user_timeout', 'tcp_user_timeout', 'fastopen', 'quickack', 'defer_accept', 'maxseg', 'notsent_lowat',
	'ip_ttl', 'ttl', 'tos', 'ip_tos', 'multicast_loop', 'ip_multicast_loop', 'ip_multicast_if',
	'ip_multicast_ttl', 'ip_add_membership', 'ip_drop_membership', 'ip_add_source_membership',
	'ip_block_source', 'recverr', 'ip_recverr', 'freebind', 'transparent', 'ip_mtu_discover', 'ip_mtu',
	'v6only', 'ipv6_v6only', 'ipv6_unicast_hops', 'ipv6_multicast_if', 'ipv6_join_group',
	'ipv6_add_membership', 'ipv6_leave_group', 'ipv6_tclass', 'ipv6_mtu', 'rcvlowat', 'sndlowat',
	'oobinline', 'dontroute', 'mark', 'busy_poll', 'incoming_cpu', 'zerocopy'}

-- Functions and positions that take names (never a host or a path).
local KEYWORD_ARGS = {
	tcp = {[1] = true, [2] = true}, udp = {[1] = true, [2] = true}, raw = {[1] = true, [2] = true},
	socketpair = {[1] = true}, backend = {[1] = true}, inet_pton = {[1] = true}, inet_ntop = {[1] = true},
	is_ipv4 = {[1] = true}, is_ipv6 = {[1] = true}, if_nametoindex = {[1] = true}, buffer = {[1] = true},
	addr = {[3] = true, [4] = true, [5] = true, [6] = true},
	setopt = {[2] = true}, getopt = {[2] = true}, shutdown = {[2] = true},
}

local function f_nothing() end
local function f_error() error('fuzz-error: raised on purpose', 0) end
local function f_false() return false end
local FUNCTIONS = {f_nothing, f_error, f_false, string.len}

-- Tables, one of them hostile (every field read raises).
local hostile = setmetatable({}, {__index = function() error('fuzz-error: hostile table', 0) end})
local function tables()
	return {{}, {1, 2, 3}, {'passive', 'numerichost'}, {passive = true}, {'martian'},
		{group = '127.0.0.1'}, {group = '::1', interface = 1}, {group = 1}, {reuseaddr = true}, hostile}
end

-- The objects calls are made on and given. Rebuilt after every cleanup.
local pool
local timers = {} -- sjt objects that fuzzed calls returned: cancelled at cleanup

local function build_pool()
	-- Needs a sock thread: connect and accept wait.
	local p = {}
	local co = sock.newthread(function()
		local l = assert(sock.tcp())
		assert(l:setopt('reuseaddr', true))
		assert(l:listen('127.0.0.1', 0))
		p.listener_port = l:getsockname():port()
		local c = assert(sock.tcp())
		assert(c:connect('127.0.0.1', p.listener_port, sock.clock() + 5))
		local s = assert(l:accept(sock.clock() + 5))
		local u = assert(sock.udp())
		assert(u:bind('127.0.0.1', 0))
		local uc = assert(sock.udp())
		assert(uc:connect('127.0.0.1', u:getsockname():port(), sock.clock() + 5))
		local a, b = assert(sock.socketpair())
		local da, db = assert(sock.socketpair('udp'))
		local closed = assert(sock.tcp())
		closed:close()
		local c6 = assert(sock.tcp('inet6'))
		p.inet = {l, c, s, u, uc, closed, c6, assert(sock.tcp())}
		p.unix = {a, b, da, db}
		p.done = true
	end)
	sock.resume(co)
	while not p.done do assert(sock.poll(1)) end
	p.sockets = {}
	for _, s in ipairs(p.inet) do p.sockets[#p.sockets + 1] = s end
	for _, s in ipairs(p.unix) do p.sockets[#p.sockets + 1] = s end
	p.is_unix = {}
	for _, s in ipairs(p.unix) do p.is_unix[s] = true end
	p.buffers = {sock.buffer(0), sock.buffer(1), sock.buffer(16), sock.buffer(65536), sock.buffer('abc')}
	local ai = assert(sock.addr('127.0.0.1', 80))
	local freed = assert(sock.addr('::1', 0))
	freed:free()
	local ai6 = assert(sock.addr('::1', 443, 'tcp', 'inet6'))
	local aiu = assert(sock.addr(UNIX_NAME, nil, 'tcp', 'unix'))
	p.ais = {ai, freed, ai6, aiu}
	p.sas = {ai.addr, ai6.addr, aiu.addr, p.inet[1]:getsockname(), p.unix[1]:getsockname()}
	p.ips = {ai.addr:addr(), ai6.addr:addr()}
	p.jobs = {sock.sleep_job(), sock.sleep_job()}
	local suspended = sock.newthread(function() sock.suspend() end)
	sock.resume(suspended)
	local dead = coroutine.create(f_nothing)
	coroutine.resume(dead)
	p.threads = {sock.newthread(f_nothing), sock.newthread(f_error), suspended,
		coroutine.create(f_nothing), dead, coroutine.running() or coroutine.create(f_nothing)}
	p.foreign = {io.stdout, newproxy and newproxy(true) or io.stderr}
	pool = p
end

local function teardown_pool()
	if not pool then return end
	for _, s in ipairs(pool.sockets) do pcall(sock._socket_methods.close, s) end -- even after an explicit __gc
	for _, j in ipairs(pool.jobs) do j:wakeup() end
end

-- A random value. `strings` is the string class allowed at this position.
local function value(strings)
	local r = rand(100)
	if r <= 8 then return nil
	elseif r <= 12 then return rand(2) == 1
	elseif r <= 40 then
		local k = rand(10)
		if k == 1 then return sock.clock() + 0.001
		elseif k == 2 then return sock.clock() - 1
		elseif k == 3 then return pool.listener_port
		elseif k == 4 then return rand(70000) - 100
		end
		return pick(NUMBERS)
	elseif r <= 66 then
		local k = rand(#strings + 1)
		if k > #strings then return binary_string() end
		return pick(strings[k])
	elseif r <= 70 then return pick(tables())
	elseif r <= 74 then return pick(FUNCTIONS)
	elseif r <= 78 then return pick(pool.threads)
	else
		local k = rand(7)
		if k == 1 then return pick(pool.sockets)
		elseif k == 2 then return pick(pool.buffers)
		elseif k == 3 then return pick(pool.ais)
		elseif k == 4 then return pick(pool.sas)
		elseif k == 5 then return pick(pool.ips)
		elseif k == 6 then return pick(pool.jobs)
		end
		return pick(pool.foreign)
	end
end

-- ---- the targets -------------------------------------------------------------

local targets = {}
-- Every public name, for the messages of functions written in Lua, which
-- may come from a function they call (recvall -> recv): such a message must
-- still name a function of the module. Listed at the end of the run.
local public_names = {}
local delegated = {}

-- Each target is called through a small function compiled for it, so that the
-- call site has the target's name and Lua's own argument errors (luaL_check*)
-- name it as the library's do.
local function caller(holder_expr, name)
	local src = ('local holder, pack = ...\nreturn function(...)\n local r = pack(holder[%q](...))\n return r\nend')
		:format(name)
	return assert(load(src))(holder_expr, pack)
end

local function add_target(kind, holder, name, receiver)
	local info = debug and debug.getinfo and debug.getinfo(holder[name], 'S')
	targets[#targets + 1] = {kind = kind, name = name, call = caller(holder, name), receiver = receiver,
		lua = info and info.what ~= 'C'}
end

local function sorted_keys(t)
	local keys = {}
	for k, v in pairs(t) do
		if type(k) == 'string' and type(v) == 'function' then keys[#keys + 1] = k end
	end
	table.sort(keys)
	return keys
end

-- The relative paths the fuzzing could pass, to show at the end that it
-- created none of them in the working directory (a unix socket bound to a
-- relative path would). Only these names are looked at: other tests share
-- the directory.
local function relative_candidates()
	local names = {}
	for _, list in ipairs({SAFE_STRINGS, INET_STRINGS, KEYWORDS}) do
		for _, s in ipairs(list) do
			if #s > 0 and #s < 256 and not s:find('^[/@]') and not s:find('\0', 1, true) then
				names[#names + 1] = s
			end
		end
	end
	return names
end
local function existing(names)
	local found = {}
	for _, name in ipairs(names) do
		if os.rename(name, name) then found[name] = true end
	end
	return found
end
local candidates = relative_candidates()
local existing_before = existing(candidates)

build_pool()

-- The module's public functions (those starting with '_' are the binding's own).
for _, name in ipairs(sorted_keys(sock)) do
	if not name:find('^_') then add_target('module', sock, name) end
end

-- An object type: the methods its __index reaches (a table, or the table a C
-- __index closes over) and its metamethods.
local function index_table(mt)
	local index = mt.__index
	if type(index) == 'table' then return index end
	if type(index) == 'function' and debug and debug.getupvalue then
		for i = 1, 3 do
			local _, v = debug.getupvalue(index, i)
			if type(v) == 'table' then
				local any = next(v)
				if any then return v end
			end
		end
	end
	return {}
end

-- Lua 5.1's debug.getupvalue does not open C functions: look the documented
-- method names up instead (what a C __index computes, like ai.addr, too).
local PROBE_NAMES = {'free', 'next', 'addrs', 'type', 'family', 'protocol', 'name', 'tostring', 'addr',
	'port', 'tobinary', 'sleep', 'sleep_until', 'wakeup', 'set', 'size'}
local function probe_methods(sample)
	local t = {}
	for _, name in ipairs(PROBE_NAMES) do
		local ok, v = pcall(function() return sample[name] end)
		if ok and type(v) == 'function' then t[name] = v end
	end
	return t
end

local object_types = {
	{kind = 'socket', sample = pool.inet[2], receivers = function() return pool.sockets end,
	 methods = sock.tcp_class},  -- (every class has the same methods)
	{kind = 'buffer', sample = pool.buffers[3], receivers = function() return pool.buffers end},
	{kind = 'ai', sample = pool.ais[1], receivers = function() return pool.ais end},
	{kind = 'sa', sample = pool.sas[1], receivers = function() return pool.sas end},
	{kind = 'ip', sample = pool.ips[1], receivers = function() return pool.ips end},
	{kind = 'sleep_job', sample = pool.jobs[1], receivers = function() return pool.jobs end},
}
local method_count = 0
for _, ot in ipairs(object_types) do
	local mt = assert(getmetatable(ot.sample), ot.kind .. ' has no metatable')
	local methods = ot.methods or index_table(mt)
	if next(methods) == nil then methods = probe_methods(ot.sample) end
	local names = sorted_keys(methods)
	assert(#names > 0, ot.kind .. ': no methods found')
	for _, name in ipairs(names) do
		if not name:find('^_') then add_target(ot.kind, methods, name, ot.receivers) end
	end
	for _, name in ipairs(sorted_keys(mt)) do add_target(ot.kind, mt, name, ot.receivers) end
	method_count = method_count + #names
end
assert(#targets > 40, 'too few targets: ' .. #targets)
for _, t in ipairs(targets) do
	if not t.name:find('^__') then public_names[t.name] = true end
end

-- ---- one call ----------------------------------------------------------------

local failures = {}
local stats = {calls = 0, raised = 0, returned = 0, nil_err = 0, woken = 0}

local seen_failures = {}
-- key: one line per kind of failure (the same bug shows up many times).
local function fail(msg, key)
	failures[#failures + 1] = msg
	key = key or msg
	if not seen_failures[key] then
		seen_failures[key] = true
		io.stderr:write('FUZZ: ', msg, '\n')
	end
end

local function describe(v)
	local t = type(v)
	if t == 'string' then
		if #v > 40 then return ('string(%d bytes)'):format(#v) end
		return ('%q'):format(v)
	end
	if t == 'number' or t == 'boolean' or t == 'nil' then return tostring(v) end
	local ok, s = pcall(tostring, v)
	return t .. (ok and type(s) == 'string' and (':' .. s:sub(1, 40)) or '')
end

local function describe_args(args)
	local t = {}
	for i = 1, args.n do t[i] = describe(args[i]) end
	return table.concat(t, ', ')
end

-- The strings allowed at argument position i of target t.
local function strings_for(t, receiver, i)
	local classes = {SAFE_STRINGS}
	local keyword = KEYWORD_ARGS[t.name] and KEYWORD_ARGS[t.name][i]
	if keyword then classes[#classes + 1] = KEYWORDS end
	-- IP literals: not for unix sockets (bind would create a file) nor for
	-- functions that may take a unix path.
	local unixy = (receiver ~= nil and pool.is_unix[receiver]) or t.name:find('unix')
	if not unixy then classes[#classes + 1] = INET_STRINGS end
	return classes
end

-- Sleeping for ever on a sleep job nobody can reach would leave its thread
-- waiting for good: the module's own sleeps get finite times.
local BOUNDED_TIME = {sleep = true, sleep_until = true, runat = true, runafter = true, runevery = true}

local function make_args(t)
	local args = {n = 0}
	local receiver
	local first = 1
	if t.receiver then
		if rand(10) <= 8 then
			receiver = pick(t.receiver())
		else
			receiver = value({SAFE_STRINGS})
		end
		args[1] = receiver
		args.n = 1
		first = 2
	end
	local extra = rand(7) - 1
	for i = first, first + extra - 1 do
		local v = value(strings_for(t, receiver, i))
		if t.kind == 'module' and BOUNDED_TIME[t.name] and tonumber(v) and v == v then
			v = tonumber(v) -- numeric strings count as numbers
			if t.name == 'sleep_until' or t.name == 'runat' then
				v = sock.clock() + (v % 1) * 0.01
			else
				v = (v % 1) * 0.01
			end
		end
		-- sock.buffer(n) allocates n bytes: keep it at or below 1 MiB, and test the
		-- limits separately (see the end of this file).
		if t.name == 'buffer' and type(v) == 'number' and v > 2^20 and v <= 2^41 then v = 2^20 end
		args[i] = v
		args.n = i
	end
	if TRACE then io.stderr:write(('call %s.%s(%s)\n'):format(t.kind, t.name, describe_args(args))) end
	return args
end


-- Whether an error message is acceptable for a call of target t with args.
local function names_function(err, t, args)
	-- A metamethod may go by its operation's name: __tostring as 'tostring'.
	if err:find((t.name:gsub('^__', '')), 1, true) then return true end
	if t.lua then
		for name in pairs(public_names) do
			if err:find("'" .. name .. "'", 1, true) or err:find(name .. ': ', 1, true) then
				delegated[t.kind .. '.' .. t.name .. ' -> ' .. name] = true
				return true
			end
		end
	end
	if err:find('fuzz-error', 1, true) or err:find('not enough memory', 1, true) then return true end
	-- Lua's own words for s[nil] = v, as for any table.
	if t.name == '__newindex' and (err:find('index is nil', 1, true) or err:find('index is NaN', 1, true)) then
		return true
	end
	-- A function or thread we passed may have raised on its own.
	for i = 1, args.n do
		local ty = type(args[i])
		if ty == 'function' or ty == 'thread' then return true end
	end
	return false
end

local function check_result(t, args, where, ok, r)
	stats.calls = stats.calls + 1
	if not ok then
		stats.raised = stats.raised + 1
		if type(r) ~= 'string' then
			fail(('%s: %s.%s(%s) raised a %s, not a string'):format(where, t.kind, t.name, describe_args(args), type(r)),
				t.kind .. t.name .. 'type')
		elseif not names_function(r, t, args) then
			fail(('%s: %s.%s(%s) raised an error that does not name it: %s')
				:format(where, t.kind, t.name, describe_args(args), r:sub(1, 300)),
				t.kind .. t.name .. r:gsub('%d', ''):sub(1, 60))
		end
		return
	end
	stats.returned = stats.returned + 1
	if r.n >= 2 and r[1] == nil then
		stats.nil_err = stats.nil_err + 1
		if type(r[2]) ~= 'string' then
			fail(('%s: %s.%s(%s) returned nil and a %s'):format(where, t.kind, t.name, describe_args(args), type(r[2])),
				t.kind .. t.name .. 'nil')
		end
	end
	for i = 1, r.n do -- timers to cancel at cleanup
		local v = r[i]
		if type(v) == 'table' and type(rawget(v, 'job')) == 'userdata' then timers[#timers + 1] = v end
	end
end

-- Cancel every timer, close the pool, wake the jobs and poll until nothing
-- waits any more; then make a fresh pool.
local function cleanup(where)
	for _, tm in ipairs(timers) do pcall(tm.cancel, tm) end
	timers = {}
	teardown_pool()
	sock.onerror(nil)
	local deadline = sock.clock() + 5
	while sock._waiting_count() > 0 and sock.clock() < deadline do
		pcall(sock.poll, 0.05)
		for _, tm in ipairs(timers) do pcall(tm.cancel, tm) end
		timers = {}
	end
	if sock._waiting_count() > 0 then
		fail(('%s: %d thread(s) still waiting after their sockets were closed and their jobs woken')
			:format(where, sock._waiting_count()))
		error('cannot go on with threads waiting for ever')
	end
	build_pool()
end

-- ---- phase A: outside any thread ----------------------------------------------

local function run_phase(where, body)
	local t0 = sock.clock()
	local i = 0
	while i < MAX_CALLS and sock.clock() - t0 < MAX_SECONDS do
		i = i + 1
		body(targets[(i - 1) % #targets + 1], i)
		if i % 50 == 0 then collectgarbage() end
	end
	return i, sock.clock() - t0
end

T.plain('every function and method called with random arguments, outside threads', function()
	local n, secs = run_phase('outside', function(t, i)
		local args = make_args(t)
		local r = pack(pcall(t.call, unpack(args, 1, args.n)))
		check_result(t, args, 'outside', r[1], r[2])
		-- Calls that started timers or threads: none may be left waiting.
		if sock._waiting_count() > 0 or #timers > 0 then cleanup('outside #' .. i) end
		if i % 200 == 0 then cleanup('outside #' .. i) end
	end)
	cleanup('end of phase A')
	print(('  phase A (outside threads): %d calls in %.2fs over %d targets'):format(n, secs, #targets))
	T.eq(#failures, 0, 'failures (see FUZZ: lines)')
end)

-- ---- phase B: inside threads -------------------------------------------------------

T.plain('every function and method called with random arguments, inside threads', function()
	local n, secs = run_phase('inside', function(t, i)
		local args = make_args(t)
		local done, res
		local co = sock.newthread(function()
			res = pack(sock.pcall(t.call, unpack(args, 1, args.n)))
			done = true
		end)
		local okr = pcall(sock.resume, co)
		-- Let what completes at once (refused connects, short sleeps) finish.
		local turns = 0
		while okr and not done and sock._waiting_count() > 0 and turns < 3 do
			pcall(sock.poll, 0.002)
			turns = turns + 1
		end
		if not done and sock._waiting_count() > 0 then
			stats.woken = stats.woken + 1
			cleanup('inside #' .. i .. ' ' .. t.kind .. '.' .. t.name)
		end
		if done then check_result(t, args, 'inside', res[1], res[2]) end
		if #timers > 0 or i % 200 == 0 then cleanup('inside #' .. i) end
	end)
	cleanup('end of phase B')
	print(('  phase B (inside threads): %d calls in %.2fs; %d left waiting and woken by close/wakeup')
		:format(n, secs, stats.woken))
	T.eq(#failures, 0, 'failures (see FUZZ: lines)')
end)

-- ---- limits the random values leave out ----------------------------------------

T.plain('sock.buffer at its size limits raises or returns, and never crashes', function()
	for _, n in ipairs({-1, 2^41, 2^53, 2^63, 1/0, -1/0, 0/0, 0.5}) do
		-- (not a tail call, which would hide the name from Lua's own argument errors)
		local ok, err = pcall(function() local b = sock.buffer(n); return b end)
		assert(not ok, 'sock.buffer(' .. tostring(n) .. ') did not raise')
		assert(type(err) == 'string' and err:find('buffer', 1, true), tostring(err))
	end
end)

T.plain('nothing was created in the working directory', function()
	local created = {}
	for name in pairs(existing(candidates)) do
		if not existing_before[name] then
			created[#created + 1] = name
			os.remove(name)
		end
	end
	T.eq(#created, 0, 'new entries: ' .. table.concat(created, ', '))
end)

T.plain('summary', function()
	print(('  %d calls: %d raised, %d returned (%d of them nil, err); %d targets (%d methods)')
		:format(stats.calls, stats.raised, stats.returned, stats.nil_err, #targets, method_count))
	local notes = {}
	for k in pairs(delegated) do notes[#notes + 1] = k end
	table.sort(notes)
	if #notes > 0 then
		print('  errors of Lua-written functions that name the function they called: ' .. table.concat(notes, ', '))
	end
	-- Leave no pool and no stop request behind for the checks of T.done.
	teardown_pool()
	pool = nil
	sock.start()
	T.eq(sock._waiting_count(), 0)
end)

T.done()
