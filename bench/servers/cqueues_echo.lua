-- Echo server on cqueues (Debian lua-cqueues), written the way the cqueues
-- manual shows: a controller, socket.listen, one wrapped coroutine per
-- client from srv:clients(), binary mode without output buffering.
-- usage: lua5.4 cqueues_echo.lua PORT
local cqueues = require'cqueues'
local socket = require'cqueues.socket'

local port = assert(tonumber(arg[1]), 'usage: cqueues_echo.lua PORT')
local cq = cqueues.new()
local srv = socket.listen{host = '127.0.0.1', port = port, reuseaddr = true}

-- return errors (reset by peer, broken pipe) instead of raising them
local function soft(_, _, why) return why end

cq:wrap(function()
  for con in srv:clients() do
    cq:wrap(function()
      con:onerror(soft)
      con:setmode('b', 'bn')          -- binary in, binary out, no buffering
      while true do
        local data = con:read(-65536)   -- up to 64 KiB, whatever is there
        if not data then break end
        if not con:write(data) then break end
      end
      con:close()
    end)
  end
end)

while true do
  local ok, err = cq:loop()
  if ok then break end
  io.stderr:write('cqueues_echo: ', tostring(err), '\n')
end
