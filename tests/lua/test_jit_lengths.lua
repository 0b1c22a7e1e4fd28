-- Lengths beyond 32 bits. A cdata buffer has no size sock can check, so a
-- LuaJIT program can ask for any length; the kernel writes only what
-- arrives. io_uring's request length is 32 bits: 2^32 must not become 0 (a
-- false end of stream) nor 2^32+3 become 3. LuaJIT only: it needs cdata.
local T = require'testlib'
local sock = T.sock
local ffi = require'ffi'

for _, len in ipairs{2^32, 2^32 + 3, 2^33} do
	T.test(('a waiting recv of %.0f bytes gets the data that comes'):format(len), function()
		local c, s = T.tcp_pair()
		local buf = ffi.new('char[16]')
		local got = T.go(function() return s:recv(buf, len, T.deadline()) end)  -- waits: nothing sent yet
		assert(c:send('hello'))
		T.eq(got(), 5)
		T.eq(ffi.string(buf, 5), 'hello')
		c:close()
		s:close()
	end, T.not_on_windows('an overlapped receive locks the whole buffer it is given, so a length past the real buffer is the caller\'s error there (WSAEFAULT), not a question of 32-bit lengths'))
end

T.done()
