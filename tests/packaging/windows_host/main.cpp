// A host that embeds Lua 5.4 and links sock statically (sock::lua): the
// module comes from package.preload, and Lua code echoes a message over
// loopback through it. Prints "windows_host: OK" when all went well.
#include <lua.hpp>
#include <sock/luaopen_sock.h>

#include <cstdio>

static const char* const script = R"(
local sock = require'sock'
local got = sock.run(function()
  local l = assert(sock.tcp())
  assert(l:listen('127.0.0.1', 0))
  local port = l:getsockname():port()
  sock.thread(function()
    local c = assert(l:accept(sock.clock() + 10))
    local buf = sock.buffer(4)
    assert(c:recvn(buf, 4, sock.clock() + 10))
    assert(c:send(buf, 4, sock.clock() + 10))
    c:close()
  end)
  local c = assert(sock.tcp())
  assert(c:connect('127.0.0.1', port, sock.clock() + 10))
  assert(c:send('ping', nil, sock.clock() + 10))
  local buf = sock.buffer(4)
  assert(c:recvn(buf, 4, sock.clock() + 10))
  c:close()
  l:close()
  return buf:tostring()
end)
assert(got == 'ping', 'echo returned ' .. tostring(got))
print('windows_host: echo over ' .. tostring(sock.backend()) .. ': ' .. got)
)";

int main() {
  lua_State* L = luaL_newstate();
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_sock);
  lua_setfield(L, -2, "sock");
  lua_pop(L, 2);
  if (luaL_dostring(L, script) != LUA_OK) {
    std::fprintf(stderr, "windows_host: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
  }
  lua_close(L);
  std::printf("windows_host: OK\n");
  return 0;
}
