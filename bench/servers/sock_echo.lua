-- Echo server on this project's sock module, written against luapower sock's
-- API: one listening socket, one thread per client, recv into a fixed buffer
-- and send it back.
--
-- usage: LUA_CPATH='build/lua/5.4/?.so;;' lua5.4 sock_echo.lua PORT [BUFSIZE]
-- The environment variable SOCK_BACKEND (epoll | io_uring) picks the poller
-- when the module offers sock.backend(); BUFSIZE (default 65536) is the
-- per-connection buffer size.
local sock = require'sock'

local port = assert(tonumber(arg[1]), 'usage: sock_echo.lua PORT [BUFSIZE]')
local bufsize = tonumber(arg[2]) or 65536

local want = os.getenv'SOCK_BACKEND'
if want and want ~= '' then
  if type(sock.backend) ~= 'function' then
    io.stderr:write('sock_echo: sock.backend() is missing, cannot select ', want, '\n')
    os.exit(3)
  end
  local ok, err = pcall(sock.backend, want)
  if not ok then
    io.stderr:write('sock_echo: backend ', want, ' unavailable: ', tostring(err), '\n')
    os.exit(3)
  end
end

-- Buffers go back to a free list when their connection ends and serve the
-- next one, as the C server reuses its one buffer: a new zeroed buffer per
-- connection would measure Lua's allocator and collector (64 KiB zeroed
-- and collected each time), not the sockets.
local free_buffers = {}

sock.run(function()
  local s = sock.tcp()
  s:setopt('reuseaddr', true)
  assert(s:listen('127.0.0.1', port))
  while true do
    local c = s:accept()
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
