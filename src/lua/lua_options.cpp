// s:setopt / s:getopt: Lua values <-> sock::OptionValue. Every argument check
// happens before the core call, and no C++ object that owns memory is alive
// when a Lua error may be raised.
#include "lua_options.hpp"

#include "lua_address.hpp"
#include "sock/error.hpp"
#include "sock/options.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace {

using sock::OptionKind;

[[noreturn]] void raise_arg(lua_State* L, int arg, const char* fname, const char* msg) {
  sock_argerror(L, arg, fname, msg);
  abort();  // not reached: sock_argerror raises
}

[[noreturn]] void raise_value_type(lua_State* L, const char* fname, const sock::OptionInfo& opt,
                                   const char* expected, int idx = 3) {
  char msg[160];
  std::snprintf(msg, sizeof msg, "%s expected for '%s', got %s", expected, opt.name,
                luaL_typename(L, idx));
  raise_arg(L, 3, fname, msg);
}

const sock::OptionInfo& check_option(lua_State* L, const char* fname) {
  if (lua_type(L, 2) != LUA_TSTRING) {
    char msg[96];
    std::snprintf(msg, sizeof msg, "option name expected, got %s", luaL_typename(L, 2));
    raise_arg(L, 2, fname, msg);
  }
  size_t len;
  const char* name = lua_tolstring(L, 2, &len);
  sock::OptionLookup found = sock::lookup_option(std::string_view(name, len));
  if (found.info) return *found.info;
  char msg[200];
  if (found.candidates[0])
    std::snprintf(msg, sizeof msg, "ambiguous socket option '%.60s' (say '%s' or '%s')", name,
                  found.candidates[0]->name, found.candidates[1]->name);
  else
    std::snprintf(msg, sizeof msg, "unknown socket option '%.60s'", name);
  raise_arg(L, 2, fname, msg);
}

bool is_whole(lua_Number n) { return n >= -9.2e18 && n <= 9.2e18 && std::floor(n) == n; }

long long check_integer_value(lua_State* L, const char* fname, const sock::OptionInfo& opt) {
  if (lua_type(L, 3) != LUA_TNUMBER) raise_value_type(L, fname, opt, "integer");
  lua_Number n = lua_tonumber(L, 3);
  if (!is_whole(n)) raise_arg(L, 3, fname, "number has no integer representation");
  return (long long)n;
}

// A string view of the string or number at idx; numbers are written into
// `scratch` (interface indexes). Returns false for any other type.
bool text_or_number(lua_State* L, int idx, std::string_view* out, char* scratch, size_t cap) {
  int type = lua_type(L, idx);
  if (type == LUA_TSTRING) {
    size_t len;
    const char* s = lua_tolstring(L, idx, &len);
    *out = std::string_view(s, len);
    return true;
  }
  if (type == LUA_TNUMBER) {
    lua_Number n = lua_tonumber(L, idx);
    if (!is_whole(n) || n < 0) return false;
    int written = std::snprintf(scratch, cap, "%lld", (long long)n);
    *out = std::string_view(scratch, size_t(written));
    return true;
  }
  return false;
}

// Buffers that must outlive the core call (numbers turned into text).
struct Scratch {
  char text[24];
  char iface[24];
};

// group string, or {group = ..., interface = ..., source = ...}. The fields
// are left on the stack so their strings stay alive.
void check_membership(lua_State* L, const char* fname, const sock::OptionInfo& opt,
                      sock::OptionValue& value, Scratch& scratch) {
  bool with_source = opt.kind == OptionKind::SourceMembership4;
  if (lua_type(L, 3) == LUA_TSTRING && !with_source) {
    size_t len;
    const char* s = lua_tolstring(L, 3, &len);
    value.text = std::string_view(s, len);
    return;
  }
  if (lua_type(L, 3) != LUA_TTABLE)
    raise_value_type(L, fname, opt,
                     with_source ? "table {group=, source=[, interface=]}"
                                 : "group address or table {group=[, interface=]}");
  lua_getfield(L, 3, "group");
  if (lua_type(L, -1) != LUA_TSTRING)
    raise_arg(L, 3, fname, "field 'group' must be an address string");
  size_t len;
  const char* s = lua_tolstring(L, -1, &len);
  value.text = std::string_view(s, len);

  lua_getfield(L, 3, "interface");
  if (!lua_isnil(L, -1) &&
      !text_or_number(L, -1, &value.iface, scratch.iface, sizeof scratch.iface))
    raise_arg(L, 3, fname, "field 'interface' must be an address, an interface name or index");

  if (with_source) {
    lua_getfield(L, 3, "source");
    if (lua_type(L, -1) != LUA_TSTRING)
      raise_arg(L, 3, fname, "field 'source' must be an address string");
    s = lua_tolstring(L, -1, &len);
    value.source = std::string_view(s, len);
  }
}

void check_value(lua_State* L, const char* fname, const sock::OptionInfo& opt,
                 sock::OptionValue& value, Scratch& scratch) {
  switch (opt.kind) {
    case OptionKind::Bool:
      if (lua_type(L, 3) == LUA_TBOOLEAN)
        value.flag = lua_toboolean(L, 3) != 0;
      else if (lua_type(L, 3) == LUA_TNUMBER)
        value.flag = lua_tonumber(L, 3) != 0;
      else
        raise_value_type(L, fname, opt, "boolean");
      return;
    case OptionKind::Int:
    case OptionKind::UInt64: value.integer = check_integer_value(L, fname, opt); return;
    case OptionKind::Seconds:
      if (lua_type(L, 3) != LUA_TNUMBER) raise_value_type(L, fname, opt, "number of seconds");
      value.seconds = lua_tonumber(L, 3);
      return;
    case OptionKind::Linger: {
      int type = lua_type(L, 3);
      if (type == LUA_TNIL || type == LUA_TNONE || (type == LUA_TBOOLEAN && !lua_toboolean(L, 3))) {
        value.flag = false;
        return;
      }
      if (type != LUA_TNUMBER) raise_value_type(L, fname, opt, "number of seconds or false");
      lua_Number n = lua_tonumber(L, 3);
      if (!(n >= 0 && n <= 2147483647.0)) raise_arg(L, 3, fname, "linger time out of range");
      value.flag = true;
      // Rounding 0.5 down to 0 would turn a graceful close into a reset.
      value.integer = (long long)std::ceil(n);
      return;
    }
    case OptionKind::String: {
      if (lua_type(L, 3) != LUA_TSTRING) raise_value_type(L, fname, opt, "string");
      size_t len;
      const char* s = lua_tolstring(L, 3, &len);
      value.text = std::string_view(s, len);
      return;
    }
    case OptionKind::Ipv4Interface:
      if (!text_or_number(L, 3, &value.text, scratch.text, sizeof scratch.text))
        raise_value_type(L, fname, opt, "address, interface name or index");
      return;
    case OptionKind::InterfaceIndex:
      if (lua_type(L, 3) == LUA_TSTRING) {
        size_t len;
        const char* s = lua_tolstring(L, 3, &len);
        value.text = std::string_view(s, len);
        if (len == 0) raise_arg(L, 3, fname, "empty interface name");
      } else {
        value.integer = check_integer_value(L, fname, opt);
      }
      return;
    case OptionKind::Membership4:
    case OptionKind::SourceMembership4:
    case OptionKind::Membership6: check_membership(L, fname, opt, value, scratch); return;
    case OptionKind::Errno:
    case OptionKind::SockType:
    case OptionKind::Family:
    case OptionKind::Protocol:
    case OptionKind::PeerCred: return;  // read-only, refused before this
  }
}

int push_failure(lua_State* L, int err) {
  lua_pushnil(L);
  lua_pushstring(L, sock::error_message(err));
  return 2;
}

int push_value(lua_State* L, const sock::OptionInfo& opt, const sock::OptionValue& value) {
  switch (opt.kind) {
    case OptionKind::Bool: lua_pushboolean(L, value.flag); return 1;
    case OptionKind::Int:
    case OptionKind::UInt64:
    case OptionKind::InterfaceIndex: sock_pushinteger(L, value.integer); return 1;
    case OptionKind::Seconds: lua_pushnumber(L, value.seconds); return 1;
    case OptionKind::Linger:
      if (value.flag)
        sock_pushinteger(L, value.integer);
      else
        lua_pushboolean(L, 0);
      return 1;
    case OptionKind::String:
    case OptionKind::Ipv4Interface: lua_pushstring(L, value.result); return 1;
    case OptionKind::Errno:
      if (value.integer == 0)
        lua_pushnil(L);
      else
        lua_pushstring(L, sock::error_message(int(value.integer)));
      return 1;
    case OptionKind::SockType: sock_lua_push_socktype(L, int(value.integer)); return 1;
    case OptionKind::Family: sock_lua_push_family(L, int(value.integer)); return 1;
    case OptionKind::Protocol: sock_lua_push_protocol(L, int(value.integer)); return 1;
    case OptionKind::PeerCred:
      lua_createtable(L, 0, 3);
      sock_pushinteger(L, value.cred.pid);
      lua_setfield(L, -2, "pid");
      sock_pushinteger(L, value.cred.uid);
      lua_setfield(L, -2, "uid");
      sock_pushinteger(L, value.cred.gid);
      lua_setfield(L, -2, "gid");
      return 1;
    case OptionKind::Membership4:
    case OptionKind::SourceMembership4:
    case OptionKind::Membership6: break;  // write-only, refused before this
  }
  lua_pushnil(L);
  return 1;
}

}  // namespace

int sock_lua_setopt(lua_State* L, sock::socket_t fd, const char* fname) {
  const sock::OptionInfo& opt = check_option(L, fname);
  if (!opt.writable) {
    char msg[96];
    std::snprintf(msg, sizeof msg, "socket option '%s' is read-only", opt.name);
    raise_arg(L, 2, fname, msg);
  }
  sock::OptionValue value;
  Scratch scratch;
  check_value(L, fname, opt, value, scratch);
  if (fd == sock::invalid_socket) return push_failure(L, sock::ERR_CLOSED);
  int rc = sock::set_option(fd, opt, value);
  if (rc < 0) return push_failure(L, -rc);
  lua_pushboolean(L, 1);
  return 1;
}

int sock_lua_getopt(lua_State* L, sock::socket_t fd, const char* fname) {
  const sock::OptionInfo& opt = check_option(L, fname);
  if (!opt.readable) {
    char msg[96];
    std::snprintf(msg, sizeof msg, "socket option '%s' is write-only", opt.name);
    raise_arg(L, 2, fname, msg);
  }
  if (fd == sock::invalid_socket) return push_failure(L, sock::ERR_CLOSED);
  sock::OptionValue value;
  int rc = sock::get_option(fd, opt, value);
  if (rc < 0) return push_failure(L, -rc);
  return push_value(L, opt, value);
}
