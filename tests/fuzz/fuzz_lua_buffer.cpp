// The binding's buffer slicing, through the real module on a real Lua
// (built once against 5.1, where numbers are doubles, and once against 5.4,
// where they are integers): sock.buffer(data), buf:tostring(i, j),
// buf:set(s, offset), #buf and sock.buffer(n), with i, j, offset and n
// anything a Lua number can be (NaN, infinities, huge, negative, fractional).
//  - buf:tostring(i, j) is string.sub(data, i, j) whenever i and j are whole
//    numbers string.sub takes, and never raises for them;
//  - buf:set(s, offset) writes min(#s, #buf - offset + 1) bytes at offset and
//    nothing else, for every offset from 1 to #buf + 1, and raises otherwise;
//  - whatever raises, raises a string naming the method;
//  - ASan/UBSan: no access outside the buffer, no undefined conversion.
extern "C" {
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
}

#include <cmath>
#include <cstdint>

#include "fuzz_input.hpp"
#include "sock/luaopen_sock.h"

namespace {

// The checks, in Lua: they compare with string.sub and raise FUZZ-CHECK on
// any disagreement. Calls are written out (buf:tostring(i, j)) so that Lua's
// own argument errors know the method's name, as in user code.
const char* kChecks = R"lua(
local sock = ...
local function fail(...) error('FUZZ-CHECK: ' .. string.format(...), 0) end
local function names(err, what)
  if type(err) ~= 'string' then fail('%s raised a %s', what, type(err)) end
  if not err:find(what, 1, true) then fail('error does not name %s: %s', what, err) end
end

return function(data, i, j, exact_ij, s, off, exact_off, n, try_n)
  local buf = sock.buffer(data)
  if #buf ~= #data then fail('#buf %d ~= #data %d', #buf, #data) end

  local ok, r = pcall(function() return buf:tostring(i, j) end)
  local want = exact_ij and data:sub(i == nil and 1 or i, j == nil and -1 or j)
  if ok then
    if type(r) ~= 'string' or #r > #data then fail('tostring returned %s', tostring(r)) end
    if exact_ij and r ~= want then
      fail('tostring(%s, %s) = %q, string.sub gives %q', tostring(i), tostring(j), r, want)
    end
  else
    names(r, 'tostring')
    if exact_ij then fail('tostring(%s, %s) raised: %s', tostring(i), tostring(j), r) end
  end

  local ok2, m = pcall(function() return buf:set(s, off) end)
  local o = off == nil and 1 or off
  local valid = exact_off and o >= 1 and o <= #data + 1
  if ok2 then
    if not valid then fail('set(%q, %s) on %d bytes did not raise', s, tostring(off), #data) end
    local want = math.min(#s, #data - o + 1)
    if m ~= want then fail('set wrote %s bytes, not %d', tostring(m), want) end
    local expect = data:sub(1, o - 1) .. s:sub(1, want) .. data:sub(o + want)
    if buf:tostring() ~= expect then fail('set(%q, %d) left %q, not %q', s, o, buf:tostring(), expect) end
  else
    names(m, 'set')
    if valid then fail('set(%q, %s) raised: %s', s, tostring(off), m) end
    if buf:tostring() ~= data then fail('a set that raised changed the buffer') end
  end

  if try_n then
    local ok3, b = pcall(function() return sock.buffer(n) end)
    if ok3 then
      if #b ~= n then fail('sock.buffer(%s) has %d bytes', tostring(n), #b) end
    else
      names(b, 'buffer')
    end
  end
end
)lua";

lua_State* state() {
  static lua_State* L = [] {
    lua_State* L = luaL_newstate();
    luaL_openlibs(L);
    if (luaL_loadbuffer(L, kChecks, std::strlen(kChecks), "=checks") != 0) std::abort();
    lua_pushcfunction(L, luaopen_sock);
    lua_call(L, 0, 1);
    lua_call(L, 1, 1);
    lua_setglobal(L, "check");
    return L;
  }();
  return L;
}

constexpr double kSpecial[] = {NAN, INFINITY, -INFINITY, 9007199254740992.0, 9223372036854775808.0,
                               -9223372036854775808.0, 1e300, -1e300, 0.5, -0.5, 2147483648.0,
                               -2147483649.0, 4294967296.0, 18446744073709551616.0};

// Push a number drawn from the input (or nil). *exact: whether it is a whole
// number that both the binding and string.sub must take as it is.
void push_number(lua_State* L, FuzzInput& in, bool* exact, double* as_double) {
  uint8_t tag = in.byte() % 5;
  *exact = false;
  switch (tag) {
    case 0:
      lua_pushnil(L);
      *exact = true;
      *as_double = 0;
      return;
    case 1: {
      int8_t v = (int8_t)in.byte();
      lua_pushinteger(L, v);
      *exact = true;
      *as_double = v;
      return;
    }
    case 2: {
      int64_t v = in.value<int64_t>();
#if LUA_VERSION_NUM >= 503
      lua_pushinteger(L, (lua_Integer)v);
      *exact = true;
#else
      lua_pushnumber(L, (lua_Number)v);  // rounds: exact below 2^31 (5.1's string.sub takes ints)
      *exact = v > -2147483648LL && v < 2147483647LL;
#endif
      *as_double = (double)v;
      return;
    }
    case 3: {
      double d = in.value<double>();
      lua_pushnumber(L, d);
      *exact = std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 2147483647.0;
      *as_double = d;
      return;
    }
    default: {
      double d = kSpecial[in.byte() % (sizeof kSpecial / sizeof kSpecial[0])];
      lua_pushnumber(L, d);
      *as_double = d;
      return;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lua_State* L = state();
  FuzzInput in(data, size);
  lua_getglobal(L, "check");
  std::string_view s = in.short_string();
  std::string_view content = in.short_string();
  lua_pushlstring(L, content.data(), content.size());
  bool exact_i, exact_j, exact_off, exact_n;
  double di, dj, doff, dn;
  push_number(L, in, &exact_i, &di);
  push_number(L, in, &exact_j, &dj);
  lua_pushboolean(L, exact_i && exact_j);
  lua_pushlstring(L, s.data(), s.size());
  push_number(L, in, &exact_off, &doff);
  lua_pushboolean(L, exact_off);
  push_number(L, in, &exact_n, &dn);
  // sock.buffer(n) allocates n bytes: only sizes up to 1 MiB, and values it
  // must refuse without allocating (negative, fractional, NaN, beyond 2^41).
  bool try_n = !(dn > 1048576.0 && dn <= 2199023255552.0);
  lua_pushboolean(L, try_n);
  if (lua_pcall(L, 9, 0, 0) != 0) {
    std::fprintf(stderr, "%s\n", lua_tostring(L, -1));
    std::abort();
  }
  lua_settop(L, 0);
  // Buffers are garbage now; collect now and then so memory stays flat.
  static unsigned runs = 0;
  if (++runs % 1024 == 0) lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
