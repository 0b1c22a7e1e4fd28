# Turns lua/sock.lua into a C++ header holding its bytes, so the module (and a
# host that links it statically) needs no .lua file on disk.
file(READ ${SCRIPT} hex HEX)
string(LENGTH "${hex}" hex_len)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
math(EXPR len "${hex_len} / 2")
file(WRITE ${OUT}.tmp "// Generated from lua/sock.lua by cmake/embed_lua.cmake. Do not edit.\n#pragma once\nstatic const unsigned char sock_embedded_lua[] = {${bytes}};\nstatic const unsigned long sock_embedded_lua_size = ${len};\n")
file(RENAME ${OUT}.tmp ${OUT})
