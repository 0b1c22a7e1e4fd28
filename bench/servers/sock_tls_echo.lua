-- TLS echo server on this project's sock module: sock.listen_tls, one
-- thread per client, recv into a fixed buffer and send it back (the
-- handshake runs on the first recv), as servers/sock_echo.lua does over
-- plain tcp. The listening socket has TCP_NODELAY (accepted sockets inherit
-- it), as servers/c_tls_echo.c's has.
--
-- usage: LUA_CPATH='build/lua/5.4/?.so;;' lua5.4 sock_tls_echo.lua PORT CERT.pem KEY.pem [BUFSIZE]
-- SOCK_BACKEND (epoll | io_uring) picks the poller; BUFSIZE (default 65536)
-- is the per-connection plaintext buffer.
local sock = require'sock'

local usage = 'usage: sock_tls_echo.lua PORT CERT.pem KEY.pem [BUFSIZE]'
local port = assert(tonumber(arg[1]), usage)
local cert, key = assert(arg[2], usage), assert(arg[3], usage)
local bufsize = tonumber(arg[4]) or 65536

local want = os.getenv'SOCK_BACKEND'
if want and want ~= '' then
  local ok, err = pcall(sock.backend, want)
  if not ok then
    io.stderr:write('sock_tls_echo: backend ', want, ' unavailable: ', tostring(err), '\n')
    os.exit(3)
  end
end

-- Buffers go back to a free list when their connection ends and serve the
-- next one, as the C server reuses its one buffer: a new zeroed buffer per
-- connection would measure Lua's allocator and collector (64 KiB zeroed
-- and collected each time), not the sockets.
local free_buffers = {}

sock.run(function()
  local l = assert(sock.listen_tls('127.0.0.1', port,
    {cert_file = cert, key_file = key, tcp = {nodelay = true}}))
  while true do
    local c = l:accept()
    if c then
      sock.thread(function()
        local buf = table.remove(free_buffers) or sock.buffer(bufsize)
        while true do
          local n = c:recv(buf, bufsize)
          if not n or n == 0 then break end
          if not c:send(buf, n) then break end
        end
        c:close()
        free_buffers[#free_buffers + 1] = buf
      end)
    end
  end
end)
