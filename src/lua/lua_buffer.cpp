#include "lua/lua_buffer.hpp"

#include <cstring>
#include <new>

const char* const SOCK_BUFFER = "sock.buffer";

// LuaJIT's cdata is an opaque type to the C API: lua_topointer gives the
// address of the cdata's payload, which is the array for an array type but
// the pointer variable for a pointer type. The Lua half registers a function
// that casts any cdata to `void*`, so the payload is always a pointer.
static char* cdata_pointer(lua_State* L, int idx, const char* fname) {
  lua_getfield(L, LUA_REGISTRYINDEX, "sock.cdata_to_pointer");
  if (!lua_isfunction(L, -1)) {
    lua_pop(L, 1);
    return nullptr;
  }
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != 0) {
    lua_pop(L, 1);
    sock_error(L, "bad argument #%d to '%s' (cdata is not a buffer)", idx, fname);
  }
  char* p = *(char* const*)lua_topointer(L, -1);
  lua_pop(L, 1);
  return p;
}

char* sock_lua_checkbuffer(lua_State* L, int idx, bool writable, size_t* cap, const char* fname) {
  if (void* ud = sock_testudata(L, idx, SOCK_BUFFER, sock_type_cache.buffer_mt.load(std::memory_order_relaxed))) {
    ByteBuffer* b = static_cast<ByteBuffer*>(ud);
    *cap = b->size;
    return b->data;
  }
  int t = lua_type(L, idx);
  if (t == LUA_TSTRING && !writable) {
    size_t len;
    const char* s = lua_tolstring(L, idx, &len);
    *cap = len;
    return const_cast<char*>(s);  // only ever read from
  }
  if (t == 10 /* LUA_TCDATA, LuaJIT only */) {
    if (char* p = cdata_pointer(L, idx, fname)) {
      *cap = (size_t)-1;
      return p;
    }
  }
  sock_error(L, "bad argument #%d to '%s' (%s expected, got %s)", idx, fname,
             writable ? "sock.buffer" : "string or sock.buffer", luaL_typename(L, idx));
  return nullptr;
}

ByteBuffer* sock_lua_newbuffer(lua_State* L, size_t size, const char* init) {
  size_t bytes = offsetof(ByteBuffer, data) + (size ? size : 1);
  ByteBuffer* b = static_cast<ByteBuffer*>(sock_newuserdata(L, bytes));
  b->size = size;
  if (init)
    std::memcpy(b->data, init, size);
  else
    std::memset(b->data, 0, size ? size : 1);
  luaL_setmetatable(L, SOCK_BUFFER);
  return b;
}

static ByteBuffer* check_buf(lua_State* L, const char* fname) {
  void* p = sock_testudata(L, 1, SOCK_BUFFER, sock_type_cache.buffer_mt.load(std::memory_order_relaxed));
  if (!p) sock_error(L, "bad argument #1 to '%s' (sock.buffer expected, got %s)", fname, luaL_typename(L, 1));
  return static_cast<ByteBuffer*>(p);
}

// sock.buffer(size | string) -> buf
static int l_buffer(lua_State* L) {
  if (lua_type(L, 1) == LUA_TSTRING) {
    size_t len;
    const char* s = lua_tolstring(L, 1, &len);
    sock_lua_newbuffer(L, len, s);
    return 1;
  }
  if (!lua_isnumber(L, 1))
    sock_error(L, "bad argument #1 to 'buffer' (size or string expected, got %s)", luaL_typename(L, 1));
  long long n = sock_checkinteger(L, 1, "buffer");
  if (n < 0 || n > (1LL << 40)) sock_error(L, "bad argument #1 to 'buffer' (size out of range)");
  sock_lua_newbuffer(L, (size_t)n, nullptr);
  return 1;
}

static int l_len(lua_State* L) {
  sock_pushinteger(L, (long long)check_buf(L, "__len")->size);
  return 1;
}

static int l_size(lua_State* L) {
  sock_pushinteger(L, (long long)check_buf(L, "size")->size);
  return 1;
}

// Resolve string.sub-style indices (1-based, negative from the end) to a
// [start, end) byte range.
static void slice(lua_State* L, size_t size, int i_idx, size_t* from, size_t* to, const char* fname) {
  long long n = (long long)size;
  long long i = sock_optinteger(L, i_idx, 1, fname);
  long long j = sock_optinteger(L, i_idx + 1, -1, fname);
  if (i < 0) i = n + i + 1;
  if (j < 0) j = n + j + 1;
  if (i < 1) i = 1;
  if (j > n) j = n;
  if (i > j) {
    *from = *to = 0;
    return;
  }
  *from = (size_t)(i - 1);
  *to = (size_t)j;
}

// buf:tostring([i[, j]]) -> the bytes i..j as a string
static int l_tostring(lua_State* L) {
  ByteBuffer* b = check_buf(L, "tostring");
  size_t from, to;
  slice(L, b->size, 2, &from, &to, "tostring");
  lua_pushlstring(L, b->data + from, to - from);
  return 1;
}

// buf:set(string[, offset]) -> bytes copied: fill from a string (offset is 1-based)
static int l_set(lua_State* L) {
  ByteBuffer* b = check_buf(L, "set");
  size_t len;
  sock_checkstring(L, 2, "set");
  const char* s = lua_tolstring(L, 2, &len);
  long long off = sock_optinteger(L, 3, 1, "set");
  if (off < 1 || (size_t)off > b->size + 1) sock_error(L, "bad argument #3 to 'set' (offset out of range)");
  size_t room = b->size - (size_t)(off - 1);
  size_t n = len < room ? len : room;
  std::memcpy(b->data + off - 1, s, n);
  sock_pushinteger(L, (long long)n);
  return 1;
}

static int l_tostring_meta(lua_State* L) {
  ByteBuffer* b = check_buf(L, "__tostring");
  lua_pushfstring(L, "sock.buffer(%d): %p", (int)b->size, (void*)b);
  return 1;
}

void sock_lua_open_buffer(lua_State* L) {
  static const luaL_Reg methods[] = {{"tostring", l_tostring}, {"set", l_set}, {"size", l_size}, {nullptr, nullptr}};
  luaL_newmetatable(L, SOCK_BUFFER);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_len);
  lua_setfield(L, -2, "__len");
  lua_pushcfunction(L, l_tostring_meta);
  lua_setfield(L, -2, "__tostring");
  sock_type_cache_fill(sock_type_cache.buffer_mt, L);
  lua_pop(L, 1);
  lua_pushcfunction(L, l_buffer);
  lua_setfield(L, -2, "buffer");
}
