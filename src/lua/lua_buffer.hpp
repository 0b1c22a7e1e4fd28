// sock.buffer: a fixed-size byte buffer userdata, and the one function every
// I/O method uses to get bytes out of (or room in) whatever Lua passed.
#pragma once

#include <cstddef>

#include "lua/compat.hpp"

struct ByteBuffer {
  size_t size;
  char data[1];  // really `size` bytes
};

extern const char* const SOCK_BUFFER;

// Where the bytes of argument `idx` are: a sock.buffer, a string (only when
// `writable` is false), or on LuaJIT an ffi cdata array or pointer. *cap is
// the usable size, or (size_t)-1 when unknown (a cdata pointer: the caller
// must pass a length). Raises naming fname and the argument otherwise.
char* sock_lua_checkbuffer(lua_State* L, int idx, bool writable, size_t* cap, const char* fname);

// Push a new sock.buffer of `size` bytes, copying `init` into it if given.
ByteBuffer* sock_lua_newbuffer(lua_State* L, size_t size, const char* init);

void sock_lua_open_buffer(lua_State* L);  // module table on top
