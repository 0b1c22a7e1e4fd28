-- The development rockspec: builds the working tree it sits in.
--   luarocks make rockspec/sock-scm-1.rockspec                      (default Lua)
--   luarocks --lua-version 5.4 make rockspec/sock-scm-1.rockspec    (a given one)
-- CMake builds one sock.so (sock.dll on Windows) for the Lua whose headers
-- luarocks names (LUA_INCDIR) and installs it into the rock's lib dir;
-- nothing else. On Windows the module links the Lua DLL's import library
-- (LUA_LIBDIR/LUALIB); the Windows build is tested cross-compiled with
-- mingw-w64 under Wine, the rock itself on Windows (MSVC or mingw) is not.
rockspec_format = "3.0"
package = "sock"
version = "scm-1"
source = {
   url = "git+https://github.com/sock-lua/sock.git",
}
description = {
   summary = "Coroutine-based async sockets for Lua 5.1-5.4 and LuaJIT, API-compatible with luapower sock",
   detailed = [[
sock is an async socket library for Lua: every I/O call is made from a
coroutine ("a sock thread") and suspends only that thread while the call waits,
on an epoll or io_uring event loop. TCP, UDP, raw and unix sockets, TLS over
OpenSSL 3, address lookup, deadlines on every call, sleeps and timers,
normalized error names.
The API is luapower sock's, name for name, on every Lua: 5.1, 5.2, 5.3, 5.4 and
LuaJIT 2.1. A C++17 core with a thin binding; one sock.so, no Lua files.
]],
   homepage = "https://github.com/sock-lua/sock",
   license = "MIT",
   labels = { "socket", "networking", "async", "coroutine", "epoll", "io_uring", "tls" },
}
supported_platforms = { "linux", "windows" }
dependencies = {
   "lua >= 5.1, < 5.5",
}
-- TLS (sock.tls_client, ...) links OpenSSL 3's libssl and libcrypto. On
-- Windows, OPENSSL_DIR names an OpenSSL 3 for the same compiler; a static
-- one (as scripts/windows-openssl builds for the tested mingw-w64 build)
-- also needs OPENSSL_USE_STATIC_LIBS=ON in the CMake variables below.
external_dependencies = {
   OPENSSL = { header = "openssl/ssl.h", library = "ssl" },
}
build = {
   type = "cmake",
   variables = {
      CMAKE_BUILD_TYPE = "Release",
      CMAKE_INSTALL_PREFIX = "$(PREFIX)",
      SOCK_LUA_INCLUDE_DIR = "$(LUA_INCDIR)",
      SOCK_INSTALL_CMOD_DIR = "$(LIBDIR)",
      SOCK_INSTALL_DEV = "OFF",
      SOCK_EMBED_LUA = "",
      SOCK_TESTS = "OFF",
      SOCK_TLS = "ON",
      OPENSSL_ROOT_DIR = "$(OPENSSL_DIR)",
   },
   platforms = {
      windows = {
         variables = {
            SOCK_LUA_LIBRARY = "$(LUA_LIBDIR)/$(LUALIB)",
         },
      },
   },
}
