# Packaging on Windows (included by tests/windows.cmake), label `windows` and
# `packaging`:
#  - packaging:windows_install: cmake --install of this build into a fresh
#    prefix; checks the files (sock.dll under lib/lua/<abi>, headers, static
#    libraries, the CMake package) and that sock::core links ws2_32 and
#    mswsock.
#  - packaging:windows_find_package: a small host project (windows_host/),
#    configured with the same toolchain, find_package(sock) from that
#    prefix, links sock::lua and the Windows Lua 5.4, then runs (under
#    Wine when cross-compiling): Lua code in it requires sock from
#    package.preload and echoes over loopback.
set(pkg_work ${CMAKE_CURRENT_BINARY_DIR}/packaging-windows)
set(abis "")
foreach(v IN LISTS SOCK_BUILT_INTERPRETERS)
  if(v STREQUAL "luajit")
    list(APPEND abis 5.1)
  else()
    list(APPEND abis ${v})
  endif()
endforeach()
list(REMOVE_DUPLICATES abis)

add_test(NAME packaging:windows_install
  COMMAND ${CMAKE_COMMAND} -DBUILD_DIR=${CMAKE_BINARY_DIR} -DPREFIX=${pkg_work}/prefix
          "-DABIS=${abis}" -DWITH_LUA_STATIC=$<TARGET_EXISTS:sock_lua_static> -DCONFIG=$<CONFIG>
          -P ${CMAKE_CURRENT_LIST_DIR}/check_windows_install.cmake)
set_tests_properties(packaging:windows_install PROPERTIES LABELS "packaging;windows" TIMEOUT 120
  FIXTURES_SETUP sock_windows_prefix)

set(lua54 ${SOCK_WINDOWS_LUA_DIR}/5.4)
if(TARGET sock_lua_static AND SOCK_EMBED_LUA STREQUAL "5.4" AND SOCK_WINDOWS_LUA_DIR AND EXISTS ${lua54}/include/lua.h)
  add_test(NAME packaging:windows_find_package
    COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${CMAKE_CURRENT_LIST_DIR}/windows_host
            -DWORK_DIR=${pkg_work}/host -DPREFIX=${pkg_work}/prefix -DLUA_DIR=${lua54}
            -DTOOLCHAIN=${CMAKE_TOOLCHAIN_FILE} -DGENERATOR=${CMAKE_GENERATOR}
            "-DEMULATOR=${CMAKE_CROSSCOMPILING_EMULATOR}"
            "-DOPENSSL_ROOT_DIR=${OPENSSL_ROOT_DIR}" "-DOPENSSL_USE_STATIC_LIBS=${OPENSSL_USE_STATIC_LIBS}"
            -P ${CMAKE_CURRENT_LIST_DIR}/run_windows_host.cmake)
  set_tests_properties(packaging:windows_find_package PROPERTIES LABELS "packaging;windows" TIMEOUT 300
    FIXTURES_REQUIRED sock_windows_prefix
    PASS_REGULAR_EXPRESSION "windows_host: OK")
else()
  message(STATUS "sock: no sock::lua for 5.4 or no Windows Lua 5.4: packaging:windows_find_package not registered")
endif()
