-- Echo server on LuaSocket + copas (Debian lua-socket, lua-copas), written the
-- way the copas manual shows: socket.bind, copas.addserver with a handler per
-- client, copas.loop. The manual's handler reads lines; an echo of arbitrary
-- bytes uses copas.receivePartial, which returns whatever has arrived.
-- Debian's lua-copas 1.2.0 (copas 1.1.7) ships for Lua 5.1/5.2 only: run with lua5.2.
-- usage: lua5.2 copas_echo.lua PORT
local socket = require'socket'
local copas = require'copas'

local port = assert(tonumber(arg[1]), 'usage: copas_echo.lua PORT')
local server = assert(socket.bind('127.0.0.1', port))

copas.addserver(server, function(skt)
  while true do
    local data, err, part = copas.receivePartial(skt, 65536)
    data = data or part
    if data and #data > 0 then
      if not copas.send(skt, data) then break end
    end
    if err and err ~= 'timeout' then break end   -- 'closed' or a socket error
  end
  skt:close()
end)

copas.loop()
