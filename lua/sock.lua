-- The Lua half of the sock module: what is clearer in Lua than in C and is
-- not on the hot path. It receives the module table the C half built and
-- completes it. Compiled into the module: no file of it is needed at run time.
local sock = ...

local coroutine, select, setmetatable, type, error = coroutine, select, setmetatable, type, error
local concat = table.concat
local unpack = table.unpack or unpack
local methods = sock._socket_methods

local function pack(...) return {n = select('#', ...), ...} end

-- Argument checks for the functions written here, worded as the C ones and,
-- like theirs, raised at the caller's line (_raise_at_caller passes over
-- the frames of this file).
local raise_at_caller = sock._raise_at_caller
local function argerror(n, fname, expected, v)
	raise_at_caller(("bad argument #%d to '%s' (%s expected, got %s)"):format(n, fname, expected, type(v)))
end
local function callable(f)
	if type(f) == 'function' then return true end
	local mt = getmetatable(f)
	return type(mt) == 'table' and mt.__call ~= nil
end
local function check_callable(n, fname, f)
	if not callable(f) then argerror(n, fname, 'function', f) end
end
local function check_number(n, fname, v)
	if type(v) ~= 'number' then argerror(n, fname, 'number', v) end
	if v ~= v then raise_at_caller(("bad argument #%d to '%s' (number expected, got NaN)"):format(n, fname)) end
end
local function check_socket(fname, self)
	if not pcall(methods.closed, self) then argerror(1, fname, 'socket', self) end
end
-- Reading until the end, or a count of bytes, would run datagrams together.
local function check_stream_socket(fname, self)
	check_socket(fname, self)
	local socktype = methods.type(self)
	if socktype ~= 'tcp' then
		raise_at_caller(("bad argument #1 to '%s' (stream socket expected, got %s socket; use recv or recvnext)")
			:format(fname, tostring(socktype)))
	end
end

-- LuaJIT: cdata buffers -----------------------------------------------------

local ffi
if type(jit) == 'table' then
	local ok, m = pcall(require, 'ffi')
	if ok then
		ffi = m
		local voidp = ffi.typeof('void*')
		sock._set_cdata_converter(function(x) return ffi.cast(voidp, x) end)
	end
end

-- A buffer holding string s, of the kind luapower code expects: cdata on
-- LuaJIT, a sock.buffer elsewhere.
local function buffer_of(s)
	if ffi then
		local b = ffi.new('uint8_t[?]', #s)
		ffi.copy(b, s, #s)
		return b
	end
	return sock.buffer(s)
end

sock._buffer_of = buffer_of  -- (for recvall in sock_tls.lua)

local function buffer_string(buf, len)
	if type(buf) == 'string' then return buf:sub(1, len) end
	if ffi and type(buf) == 'cdata' then return ffi.string(buf, len) end
	return buf:tostring(1, len)
end

-- Receiving in full --------------------------------------------------------

-- Methods for any object with the class's methods ---------------------------
--
-- luapower's classes are meant to be extended: sock_libtls copies
-- sock.tcp_class into its TLS socket classes, gives them their own recv and
-- _send, and inherits send, recvn, recvall and recvall_read, which must then
-- work through self:_send and self:recv. So these are written for any such
-- object; a sock socket (a table with its userdata at key 0) takes the C
-- path, and gets the C function itself when it looks the method up (see
-- sock._fast_method), so its calls cost nothing more.

-- The twins, also kept here for lua/sock_ffi.lua's __index: {method = twin}.
local twins = {}
sock._twins = twins
local function fast_method(method, twin)
	sock._fast_method(method, twin)
	twins[method] = twin
end

local function is_socket(self)
	return type(self) == 'table' and type(rawget(self, 0)) == 'userdata'
end
local function is_foreign(self, fname, method)
	if is_socket(self) or type(self) ~= 'table' then return false end
	if type(self[method]) ~= 'function' and not callable(self[method]) then
		raise_at_caller(("bad argument #1 to '%s' (socket, or an object with a %s method, expected)"):format(fname, method))
	end
	return true
end

-- Where the next part of buf starts, `done` bytes in: a cdata pointer moved
-- on (LuaJIT), or the rest of a string.
local function advance(fname, buf, done)
	if done == 0 then return buf end
	if type(buf) == 'string' then return buf:sub(done + 1) end
	if ffi and type(buf) == 'cdata' then return ffi.cast('uint8_t*', buf) + done end
	raise_at_caller(("%s: this object's send/receive needs a string or a cdata buffer (got %s)"):format(fname, type(buf)))
end

-- tcp:send(s|buf, [len], [expires], [flags]) -> true | nil, err, sent
local c_send = methods.send
local function send(self, buf, len, expires, flags)
	if not is_foreign(self, 'send', '_send') then return c_send(self, buf, len, expires, flags) end
	len = len or #buf
	local sent = 0
	while sent < len do
		local n, err = self:_send(advance('send', buf, sent), len - sent, expires, flags)
		if not n then return nil, err, sent end
		sent = sent + n
	end
	return true
end
methods.send = send
fast_method(send, c_send)

-- tcp:recvn(buf, len, [expires]) -> buf, len | nil, err, read_len
local c_recvn = methods._recvn
local function socket_recvn(self, buf, len, expires)  -- what sockets get
	local n, err, got = c_recvn(self, buf, len, expires)  -- (it checks self)
	if not n then return nil, err, got end
	return buf, n
end
local function recvn(self, buf, len, expires)
	if not is_foreign(self, 'recvn', 'recv') then return socket_recvn(self, buf, len, expires) end
	local got = 0
	while got < len do
		local n, err = self:recv(advance('recvn', buf, got), len - got, expires)
		if not n then return nil, err, got end
		if n == 0 then return nil, 'eof', got end
		got = got + n
	end
	return buf, len
end
methods.recvn = recvn
fast_method(recvn, socket_recvn)

-- tcp:recvall([expires]) -> buf, len | nil, err, buf, len
function methods.recvall(self, expires)
	if not is_foreign(self, 'recvall', 'recv') then check_stream_socket('recvall', self) end
	if expires ~= nil then check_number(2, 'recvall', expires) end
	local chunks, count, total = {}, 0, 0
	-- (cdata for an object of another kind: sock_libtls's recv takes a pointer)
	local buf = ffi and not is_socket(self) and ffi.new('uint8_t[?]', 65536) or sock.buffer(65536)
	while true do
		local len, err = self:recv(buf, 65536, expires)
		if not len then
			local s = concat(chunks)
			return nil, err, buffer_of(s), #s
		end
		if len == 0 then break end
		count = count + 1
		chunks[count] = buffer_string(buf, len)
		total = total + len
	end
	local s = concat(chunks)
	return buffer_of(s), total
end

-- tcp:recvall_read([expires]) -> read | nil, err
-- read(buf, size) copies up to size bytes into buf and returns how many (0
-- at the end); read([size]) returns them as a string (nil at the end). The
-- read function never yields, for APIs that cannot.
function methods.recvall_read(self, expires)
	if not is_foreign(self, 'recvall_read', 'recvall') then check_stream_socket('recvall_read', self) end
	if expires ~= nil then check_number(2, 'recvall_read', expires) end
	local buf, len = self:recvall(expires)
	if not buf then return nil, len end
	local data = buffer_string(buf, len)
	local pos = 1
	return function(dst, size)
		local left = #data - pos + 1
		if dst == nil or type(dst) == 'number' then
			if left <= 0 then return nil end
			local n = dst and math.min(dst, left) or left
			local s = data:sub(pos, pos + n - 1)
			pos = pos + n
			return s
		end
		local n = math.min(size or left, left)
		if n <= 0 then return 0 end
		local s = data:sub(pos, pos + n - 1)
		if ffi and type(dst) == 'cdata' then
			ffi.copy(dst, s, n)
		else
			dst:set(s)
		end
		pos = pos + n
		return n
	end
end

-- Threads -------------------------------------------------------------------

-- sock.thread(f, ...) -> co: make a thread and run it until it first waits.
function sock.thread(f, ...)
	local co = sock.newthread(f)
	sock.resume(co, ...)
	return co
end

-- sock.run(f, ...) -> ...: run f inside a sock thread, polling until every
-- thread is done; inside a thread already, just call f.
function sock.run(f, ...)
	check_callable(1, 'run', f)
	if sock._running() then return f(...) end
	local ret
	sock.thread(function(...) ret = pack(f(...)) end, ...)
	sock.start()
	if ret then return unpack(ret, 1, ret.n) end
end

sock.yield = coroutine.yield

-- Coroutines made inside a sock thread pass the scheduler's yields (waits,
-- suspends, transfers) through to the thread, and resume with what it gets.
local is_marker = sock._is_marker

-- sock.cowrap(f) -> wrapper, thread: luapower's cowrap, which is coro.safewrap.
-- f runs as f(yield, ...) in a coroutine of its own, with the arguments of
-- the wrapper's first call; it may do I/O (its waits pass through to the
-- enclosing sock thread). yield(...) gives its values to whoever called the
-- wrapper and returns the arguments of the next call, also when it is called
-- from a coroutine nested inside f's (another cowrap, or sock.pcall on 5.1):
-- the yield is passed up through those to this wrapper. A plain sock.yield
-- inside f gives its values to the wrapper's caller too.
local CROSS = {}  -- marker of a yield meant for one wrapper: CROSS, its thread, values

function sock.cowrap(f)
	check_callable(1, 'cowrap', f)
	local co
	local function yield(...)
		return coroutine.yield(CROSS, co, ...)
	end
	co = coroutine.create(function(...)
		sock.save_thread_context(co)
		return f(yield, ...)
	end)
	sock._allow_nested(co)
	local function step(ok, ...)
		if not ok then error((...), 0) end
		if coroutine.status(co) == 'dead' then return ... end
		local first = ...
		if first == CROSS then
			if select(2, ...) == co then return select(3, ...) end  -- ours: to the caller
		elseif not is_marker(first) then
			return ...  -- a plain sock.yield: to the caller
		end
		-- A wait, or a yield meant for an enclosing wrapper: pass it up and
		-- resume f's coroutine with what comes back.
		return step(coroutine.resume(co, coroutine.yield(...)))
	end
	return function(...)
		return step(coroutine.resume(co, ...))
	end, co
end

-- sock.pcall / sock.xpcall: protected calls that may wait. Lua 5.2+ and
-- LuaJIT can yield across pcall; plain 5.1 cannot, so there the call runs in
-- a coroutine of its own whose yields are passed through.
local native_yieldable_pcall = not (_VERSION == 'Lua 5.1' and type(jit) ~= 'table')

local function coroutine_pcall(handler, f, ...)
	-- (5.1's coroutine.create takes only Lua functions)
	local co = coroutine.create(function(...) return f(...) end)
	sock._allow_nested(co)
	local function step(ok, ...)
		if not ok then
			local err = ...
			if handler then return false, handler(err) end
			return false, err
		end
		if coroutine.status(co) == 'dead' then return true, ... end
		return step(coroutine.resume(co, coroutine.yield(...)))
	end
	return step(coroutine.resume(co, ...))
end

if native_yieldable_pcall then
	sock.pcall = pcall
	if select(2, xpcall(function(a) return a end, function() end, true)) == true then
		sock.xpcall = xpcall
	else
		sock.xpcall = function(f, handler, ...)
			local args = pack(...)
			return xpcall(function() return f(unpack(args, 1, args.n)) end, handler)
		end
	end
else
	function sock.pcall(f, ...) return coroutine_pcall(nil, f, ...) end
	function sock.xpcall(f, handler, ...)
		check_callable(2, 'xpcall', handler)
		return coroutine_pcall(handler, f, ...)
	end
end

-- Per-thread environment and finish hooks ------------------------------------

-- luapower's thread-context hooks, which a program replaces by assignment
-- (webb keeps its per-request context this way): save_thread_context(co) is
-- called as a thread (or a cowrap's coroutine) starts, with the context of
-- whoever started it still current; restore_thread_context(co) each time a
-- thread gets control back (after a wait, a suspend, a transfer or a resume
-- it made). The defaults do nothing and cost nothing: the scheduler is told
-- when one is set, through the module table's __newindex.
local function noop() end
local context_hooks = {save_thread_context = noop, restore_thread_context = noop}
local function hook_or_nil(f) if f ~= noop then return f end end
setmetatable(sock, {
	__index = context_hooks,
	__newindex = function(t, k, v)
		if context_hooks[k] == nil then return rawset(t, k, v) end
		if v == nil then v = noop end
		check_callable(3, 'sock.' .. k .. ' =', v)
		context_hooks[k] = v
		sock._set_context_hooks(hook_or_nil(context_hooks.save_thread_context),
			hook_or_nil(context_hooks.restore_thread_context))
	end,
})

sock.threadenv = setmetatable({}, {__mode = 'k'})

-- sock.onthreadfinish(co, f): call f(co) when co ends (normally or by error).
function sock.onthreadfinish(co, f)
	if type(co) ~= 'thread' then argerror(1, 'onthreadfinish', 'thread', co) end
	check_callable(2, 'onthreadfinish', f)
	local hooks = sock._finish_hooks()
	local prev = hooks[co]
	if prev then
		hooks[co] = function(t) prev(t); f(t) end
	else
		hooks[co] = f
	end
end

-- Timers ----------------------------------------------------------------------

local CANCEL = {}
local timer_methods = {}
local timer_mt = {__index = timer_methods}

-- sjt:cancel() -> true if the timer was still pending
function timer_methods:cancel()
	return self.job:wakeup(CANCEL)
end

-- sock.runat(t, f) -> sjt: run f in a new thread at clock t.
function sock.runat(t, f)
	check_number(1, 'runat', t)
	check_callable(2, 'runat', f)
	local job = sock.sleep_job()
	sock.thread(function()
		if job:sleep_until(t) == CANCEL then return end
		f()
	end)
	return setmetatable({job = job}, timer_mt)
end

function sock.runafter(s, f)
	check_number(1, 'runafter', s)
	check_callable(2, 'runafter', f)
	return sock.runat(sock.clock() + s, f)
end

-- sock.runevery(s, f) -> sjt: run f every s seconds until it returns false or
-- the timer is cancelled. Ticks are scheduled from the start, so they do not drift.
function sock.runevery(s, f)
	check_number(1, 'runevery', s)
	check_callable(2, 'runevery', f)
	local job = sock.sleep_job()
	sock.thread(function()
		local t = sock.clock()
		while true do
			t = t + s
			if job:sleep_until(t) == CANCEL then return end
			if f() == false then return end
		end
	end)
	return setmetatable({job = job}, timer_mt)
end

return sock
