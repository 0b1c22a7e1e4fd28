-- Echo server on luv (Debian lua-luv), written the way the luv docs show a
-- TCP server: uv.new_tcp, bind, listen with an on-connection callback that
-- accepts into a new handle, read_start, write each chunk back.
-- usage: lua5.4 luv_echo.lua PORT
local uv = require'luv'

local port = assert(tonumber(arg[1]), 'usage: luv_echo.lua PORT')
-- libuv leaves SIGPIPE to the application; a write to a peer that has reset
-- the connection would kill the process, so catch the signal.
local sigpipe = uv.new_signal()
sigpipe:start('sigpipe', function() end)
sigpipe:unref()

local server = uv.new_tcp()
assert(server:bind('127.0.0.1', port))
assert(server:listen(128, function(err)
  assert(not err, err)
  local client = uv.new_tcp()
  server:accept(client)
  client:read_start(function(rerr, chunk)
    if rerr or not chunk then       -- error or EOF
      client:close()
      return
    end
    client:write(chunk)
  end)
end))

uv.run()
