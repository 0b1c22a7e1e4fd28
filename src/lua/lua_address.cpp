// sock.addr and the ai / sa / ip objects.
//
// Ownership: the nodes of one resolved list (the ai sock.addr returns and the
// ones ai:next() / ai:addrs() hand out) share the list through a shared_ptr,
// so the list lives while any of them does. ai:free() marks the list freed for
// every node (later use raises a clear error) and drops that node's share; the
// memory goes with the last share. sa and ip objects are small copies and
// depend on nothing.
//
// Lua errors longjmp past C++ destructors, so every function raises (argument
// checks) before it creates any C++ object that owns memory.
#include "lua_address.hpp"
#include "lua_dns.hpp"

#include "sock/address.hpp"
#include "sock/error.hpp"


#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

namespace {

constexpr const char* kAiMeta = "sock.ai";
constexpr const char* kSaMeta = "sock.sa";
constexpr const char* kIpMeta = "sock.ip";

struct SharedList {
  sock::AddrList list;
  bool freed = false;
};

struct LuaAi {
  std::shared_ptr<SharedList> owner;  // empty once freed or collected
  const addrinfo* node = nullptr;
};

struct LuaSa {
  sock::SockAddr addr;
};

struct LuaIp {
  int family;
  unsigned char bytes[16];
};

// ---- argument helpers ---------------------------------------------------------

[[noreturn]] void raise_type(lua_State* L, int idx, const char* fname, const char* expected) {
  char msg[96];
  std::snprintf(msg, sizeof msg, "%s expected, got %s", expected, luaL_typename(L, idx));
  sock_argerror(L, idx, fname, msg);
  abort();  // not reached: sock_argerror raises
}

[[noreturn]] void raise_unknown(lua_State* L, int idx, const char* fname, const char* what,
                                const char* name) {
  char msg[160];
  std::snprintf(msg, sizeof msg, "unknown %s '%.80s'", what, name);
  sock_argerror(L, idx, fname, msg);
  abort();
}

template <typename T>
T* check_object(lua_State* L, int idx, const char* meta, const char* fname, const char* what) {
  auto* p = static_cast<T*>(luaL_testudata(L, idx, meta));
  if (!p) raise_type(L, idx, fname, what);
  return p;
}

// An integer-valued number or raise; used where the compat helpers would name
// the function '?'.
long long check_whole_number(lua_State* L, int idx, const char* fname, const char* what) {
  if (lua_type(L, idx) != LUA_TNUMBER) raise_type(L, idx, fname, what);
  lua_Number n = lua_tonumber(L, idx);
  if (!(n >= -9.2e18 && n <= 9.2e18) || (lua_Number)(long long)n != n)
    sock_argerror(L, idx, fname, "number has no integer representation");
  return (long long)n;
}

// Shared parser of the family / type / protocol arguments.
int opt_named(lua_State* L, int idx, int def, const char* fname, const char* what,
              int (*from_name)(std::string_view)) {
  switch (lua_type(L, idx)) {
    case LUA_TNONE:
    case LUA_TNIL: return def;
    case LUA_TNUMBER: {
      long long v = check_whole_number(L, idx, fname, what);
      if (v < 0 || v > 0x7fffffff) raise_unknown(L, idx, fname, what, lua_tostring(L, idx));
      return int(v);
    }
    case LUA_TSTRING: {
      size_t len;
      const char* s = lua_tolstring(L, idx, &len);
      int v = from_name(std::string_view(s, len));
      if (v < 0) raise_unknown(L, idx, fname, what, s);
      return v;
    }
    default: {
      char expected[64];
      std::snprintf(expected, sizeof expected, "%s name", what);
      raise_type(L, idx, fname, expected);
    }
  }
}

void push_name_or_number(lua_State* L, const char* name, int value) {
  if (name)
    lua_pushstring(L, name);
  else
    sock_pushinteger(L, value);
}

// ---- object constructors ------------------------------------------------------

LuaAi* push_ai(lua_State* L, std::shared_ptr<SharedList> owner, const addrinfo* node) {
  void* mem = sock_newuserdata(L, sizeof(LuaAi));
  auto* ai = new (mem) LuaAi();
  luaL_setmetatable(L, kAiMeta);
  ai->owner = std::move(owner);
  ai->node = node;
  return ai;
}

void push_ip(lua_State* L, int family, const void* bytes) {
  void* mem = sock_newuserdata(L, sizeof(LuaIp));
  auto* ip = new (mem) LuaIp();
  ip->family = family;
  std::memcpy(ip->bytes, bytes, family == AF_INET ? 4 : 16);
  luaL_setmetatable(L, kIpMeta);
}

// ---- ai -----------------------------------------------------------------------

// A live node or raise: using a freed list is a program error, not a crash.
const addrinfo* check_ai_node(lua_State* L, int idx, const char* fname) {
  auto* ai = check_object<LuaAi>(L, idx, kAiMeta, fname, "ai");
  if (!ai->owner || ai->owner->freed || !ai->node)
    sock_argerror(L, idx, fname, "address list was freed");
  return ai->node;
}

int ai_free(lua_State* L) {
  auto* ai = check_object<LuaAi>(L, 1, kAiMeta, "free", "ai");
  if (ai->owner) ai->owner->freed = true;
  ai->owner.reset();
  ai->node = nullptr;
  return 0;
}

int ai_gc(lua_State* L) {
  // reset() rather than the destructor: the object stays valid if a
  // finalizer resurrects it, and an empty shared_ptr owns nothing.
  auto* ai = static_cast<LuaAi*>(luaL_testudata(L, 1, kAiMeta));
  if (ai) {
    ai->owner.reset();
    ai->node = nullptr;
  }
  return 0;
}

int ai_next(lua_State* L) {
  const addrinfo* node = check_ai_node(L, 1, "next");
  if (!node->ai_next) {
    lua_pushnil(L);
    return 1;
  }
  auto* self = static_cast<LuaAi*>(lua_touserdata(L, 1));
  push_ai(L, self->owner, node->ai_next);
  return 1;
}

// for ai in list:addrs() do ... end: the first step yields the list's own
// node, each later one the next of the previous.
int ai_addrs_step(lua_State* L) {
  if (lua_isnoneornil(L, 2)) {
    check_ai_node(L, 1, "addrs");
    lua_settop(L, 1);
    return 1;
  }
  lua_settop(L, 2);
  lua_remove(L, 1);
  return ai_next(L);
}

int ai_addrs(lua_State* L) {
  check_ai_node(L, 1, "addrs");
  lua_pushcfunction(L, ai_addrs_step);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

int ai_type(lua_State* L) {
  sock_lua_push_socktype(L, check_ai_node(L, 1, "type")->ai_socktype);
  return 1;
}

int ai_family(lua_State* L) {
  sock_lua_push_family(L, check_ai_node(L, 1, "family")->ai_family);
  return 1;
}

int ai_protocol(lua_State* L) {
  sock_lua_push_protocol(L, check_ai_node(L, 1, "protocol")->ai_protocol);
  return 1;
}

int ai_name(lua_State* L) {
  const addrinfo* node = check_ai_node(L, 1, "name");
  if (node->ai_canonname)
    lua_pushstring(L, node->ai_canonname);
  else
    lua_pushnil(L);
  return 1;
}

void push_sockaddr_text(lua_State* L, const sockaddr* sa, socklen_t len) {
  std::string text = sock::SockAddr(sa, len).to_string();
  lua_pushlstring(L, text.data(), text.size());  // may raise only on out-of-memory
}

int ai_tostring(lua_State* L) {
  const addrinfo* node = check_ai_node(L, 1, "tostring");
  push_sockaddr_text(L, node->ai_addr, node->ai_addrlen);
  return 1;
}

int ai_tostring_meta(lua_State* L) {
  auto* ai = static_cast<LuaAi*>(luaL_testudata(L, 1, kAiMeta));
  if (!ai || !ai->owner || ai->owner->freed || !ai->node) {
    lua_pushliteral(L, "ai (freed)");
    return 1;
  }
  return ai_tostring(L);
}

// ai.addr is a field in luapower; everything else is a method.
int ai_index(lua_State* L) {
  size_t len;
  const char* key = lua_tolstring(L, 2, &len);
  if (key && std::string_view(key, len) == "addr") {
    const addrinfo* node = check_ai_node(L, 1, "addr");
    if (node->ai_addr)
      sock_lua_push_sa(L, node->ai_addr, node->ai_addrlen);
    else
      lua_pushnil(L);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

// ---- sa -----------------------------------------------------------------------

LuaSa* check_sa(lua_State* L, int idx, const char* fname) {
  return check_object<LuaSa>(L, idx, kSaMeta, fname, "sa");
}

int sa_family(lua_State* L) {
  sock_lua_push_family(L, check_sa(L, 1, "family")->addr.family());
  return 1;
}

// Unix addresses have no port: nil.
int sa_port(lua_State* L) {
  int port = check_sa(L, 1, "port")->addr.port();
  if (port < 0)
    lua_pushnil(L);
  else
    sock_pushinteger(L, port);
  return 1;
}

int sa_tostring(lua_State* L) {
  const sock::SockAddr& addr = check_sa(L, 1, "tostring")->addr;
  push_sockaddr_text(L, addr.get(), addr.len);
  return 1;
}

// An ip object for inet/inet6; the path (a string) for unix; nil otherwise.
int sa_addr(lua_State* L) {
  const sock::SockAddr& addr = check_sa(L, 1, "addr")->addr;
  const sockaddr* sa = addr.get();
  switch (addr.family()) {
    case AF_INET: push_ip(L, AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr); break;
    case AF_INET6:
      push_ip(L, AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr);
      break;
    case AF_UNIX: push_sockaddr_text(L, sa, addr.len); break;
    default: lua_pushnil(L);
  }
  return 1;
}

int sa_eq(lua_State* L) {
  auto* a = static_cast<LuaSa*>(luaL_testudata(L, 1, kSaMeta));
  auto* b = static_cast<LuaSa*>(luaL_testudata(L, 2, kSaMeta));
  lua_pushboolean(L, a && b && a->addr == b->addr);
  return 1;
}

// ---- ip -----------------------------------------------------------------------

LuaIp* check_ip(lua_State* L, int idx, const char* fname) {
  return check_object<LuaIp>(L, idx, kIpMeta, fname, "ip");
}

size_t ip_size(const LuaIp* ip) { return ip->family == AF_INET ? 4 : 16; }

// A 4- or 16-byte string and its length (luapower returns a cdata pointer; a
// string is what every Lua can hold).
int ip_tobinary(lua_State* L) {
  LuaIp* ip = check_ip(L, 1, "tobinary");
  lua_pushlstring(L, reinterpret_cast<const char*>(ip->bytes), ip_size(ip));
  sock_pushinteger(L, (long long)ip_size(ip));
  return 2;
}

int ip_tostring(lua_State* L) {
  LuaIp* ip = check_ip(L, 1, "tostring");
  char text[INET6_ADDRSTRLEN];
  if (!sock::inet_ntop(ip->family, ip->bytes, text, sizeof text)) text[0] = '\0';
  lua_pushstring(L, text);
  return 1;
}

int ip_family(lua_State* L) {
  sock_lua_push_family(L, check_ip(L, 1, "family")->family);
  return 1;
}

int ip_eq(lua_State* L) {
  auto* a = static_cast<LuaIp*>(luaL_testudata(L, 1, kIpMeta));
  auto* b = static_cast<LuaIp*>(luaL_testudata(L, 2, kIpMeta));
  lua_pushboolean(L, a && b && a->family == b->family &&
                         std::memcmp(a->bytes, b->bytes, ip_size(a)) == 0);
  return 1;
}

// ---- sock.addr and helpers ----------------------------------------------------------

// sock.addr(host, port, [socket_type], [family], [protocol], [flags]) or
// sock.addr(ai) -> the same ai.
int l_addr(lua_State* L) {
  if (luaL_testudata(L, 1, kAiMeta)) {
    check_ai_node(L, 1, "addr");  // a freed one is an error here already
    lua_settop(L, 1);
    return 1;
  }
  int socktype = sock_lua_opt_socktype(L, 3, 0, "addr");
  int family = sock_lua_opt_family(L, 4, 0, "addr");
  int protocol = sock_lua_opt_protocol(L, 5, 0, "addr");
  return sock_lua_resolve(L, 1, socktype, family, protocol, 6, 0, "addr") ? 1 : 2;
}

// 'inet' / 'inet6' (or the AF_ number) for the inet_* helpers.
int check_ip_family(lua_State* L, int idx, const char* fname) {
  if (lua_isnoneornil(L, idx)) raise_type(L, idx, fname, "address family");
  int af = sock_lua_opt_family(L, idx, AF_UNSPEC, fname);
  if (af != AF_INET && af != AF_INET6)
    sock_argerror(L, idx, fname, "family must be 'inet' or 'inet6'");
  return af;
}

int l_inet_pton(lua_State* L) {
  int af = check_ip_family(L, 1, "inet_pton");
  if (lua_type(L, 2) != LUA_TSTRING) raise_type(L, 2, "inet_pton", "string");
  size_t len;
  const char* text = lua_tolstring(L, 2, &len);
  unsigned char bin[16];
  size_t binlen = 0;
  if (!sock::inet_pton(af, std::string_view(text, len), bin, &binlen)) {
    lua_pushnil(L);
    lua_pushliteral(L, "invalid_address");
    return 2;
  }
  lua_pushlstring(L, reinterpret_cast<const char*>(bin), binlen);
  return 1;
}

int l_inet_ntop(lua_State* L) {
  int af = check_ip_family(L, 1, "inet_ntop");
  if (lua_type(L, 2) != LUA_TSTRING) raise_type(L, 2, "inet_ntop", "string");
  size_t len;
  const char* bin = lua_tolstring(L, 2, &len);
  char text[INET6_ADDRSTRLEN];
  if (len != (af == AF_INET ? 4u : 16u) || !sock::inet_ntop(af, bin, text, sizeof text)) {
    lua_pushnil(L);
    lua_pushliteral(L, "invalid_address");
    return 2;
  }
  lua_pushstring(L, text);
  return 1;
}

// Predicates: anything that is not a string is simply not an address.
int is_ip_helper(lua_State* L, bool (*check)(std::string_view)) {
  size_t len = 0;
  const char* s = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &len) : nullptr;
  lua_pushboolean(L, s && check(std::string_view(s, len)));
  return 1;
}

int l_is_ipv4(lua_State* L) { return is_ip_helper(L, sock::is_ipv4); }
int l_is_ipv6(lua_State* L) { return is_ip_helper(L, sock::is_ipv6); }

int push_interface_error(lua_State* L) {
  int err = errno;
  lua_pushnil(L);
  if (err == 0 || err == ENODEV || err == ENXIO)
    lua_pushliteral(L, "no_such_device");
  else
    lua_pushstring(L, sock::error_message(err));
  return 2;
}

int l_if_nametoindex(lua_State* L) {
  if (lua_type(L, 1) != LUA_TSTRING) raise_type(L, 1, "if_nametoindex", "string");
  size_t len;
  const char* name = lua_tolstring(L, 1, &len);
  errno = 0;
  unsigned index = std::strlen(name) == len ? sock::interface_index(name) : 0;
  if (!index) return push_interface_error(L);
  sock_pushinteger(L, index);
  return 1;
}

int l_if_indextoname(lua_State* L) {
  long long index = check_whole_number(L, 1, "if_indextoname", "number");
  char name[IF_NAMESIZE];
  errno = 0;
  bool valid = index > 0 && index <= 0xffffffffLL;
  if (!valid || !sock::interface_name(unsigned(index), name, sizeof name))
    return push_interface_error(L);
  lua_pushstring(L, name);
  return 1;
}

// Sets one flag named by the string at idx (a value inside the flags argument
// at arg, which is what error messages name).
int flag_named(lua_State* L, int idx, int arg, const char* fname) {
  if (lua_type(L, idx) != LUA_TSTRING) raise_type(L, arg, fname, "flag name");
  size_t len;
  const char* name = lua_tolstring(L, idx, &len);
  int flag = sock::addr_flag_from_name(std::string_view(name, len));
  if (flag < 0) raise_unknown(L, arg, fname, "flag", name);
  return flag;
}

void new_metatable(lua_State* L, const char* name, const luaL_Reg* meta) {
  luaL_newmetatable(L, name);
  luaL_setfuncs(L, meta, 0);
}

}  // namespace

// ---- exported -------------------------------------------------------------------

void sock_lua_push_family(lua_State* L, int af) {
  push_name_or_number(L, sock::family_name(af), af);
}
void sock_lua_push_socktype(lua_State* L, int socktype) {
  push_name_or_number(L, sock::socktype_name(socktype), socktype);
}
void sock_lua_push_protocol(lua_State* L, int protocol) {
  push_name_or_number(L, sock::protocol_name(protocol), protocol);
}

int sock_lua_opt_family(lua_State* L, int idx, int def, const char* fname) {
  return opt_named(L, idx, def, fname, "address family", sock::family_from_name);
}
int sock_lua_opt_socktype(lua_State* L, int idx, int def, const char* fname) {
  return opt_named(L, idx, def, fname, "socket type", sock::socktype_from_name);
}
int sock_lua_opt_protocol(lua_State* L, int idx, int def, const char* fname) {
  return opt_named(L, idx, def, fname, "protocol", sock::protocol_from_name);
}

int sock_lua_check_flags(lua_State* L, int idx, const char* fname) {
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
    case LUA_TNONE:
    case LUA_TNIL: return 0;
    case LUA_TNUMBER: {
      long long v = check_whole_number(L, idx, fname, "flags");
      if (v < 0 || v > 0x7fffffff) sock_argerror(L, idx, fname, "flags out of range");
      return int(v);
    }
    case LUA_TSTRING: return flag_named(L, idx, idx, fname);
    case LUA_TTABLE: {
      int flags = 0;
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        if (lua_type(L, -2) == LUA_TSTRING) {  // {passive = true}
          if (lua_toboolean(L, -1)) flags |= flag_named(L, -2, idx, fname);
        } else {  // {'passive', 'numerichost'}
          flags |= flag_named(L, -1, idx, fname);
        }
        lua_pop(L, 1);
      }
      return flags;
    }
    default: raise_type(L, idx, fname, "flags (string, table or number)");
  }
}

void sock_lua_push_addrlist(lua_State* L, sock::AddrList& list) {
  LuaAi* ai = push_ai(L, nullptr, nullptr);
  ai->owner = std::make_shared<SharedList>();
  ai->owner->list = std::move(list);
  ai->node = ai->owner->list.first();
}

void sock_lua_push_sa(lua_State* L, const sockaddr* sa, socklen_t len) {
  void* mem = sock_newuserdata(L, sizeof(LuaSa));
  auto* obj = new (mem) LuaSa();
  obj->addr = sock::SockAddr(sa, len);
  luaL_setmetatable(L, kSaMeta);
}

const sockaddr* sock_lua_test_sa(lua_State* L, int idx, socklen_t* len) {
  auto* obj = static_cast<LuaSa*>(luaL_testudata(L, idx, kSaMeta));
  if (!obj) return nullptr;
  if (len) *len = obj->addr.len;
  return obj->addr.get();
}

const addrinfo* sock_lua_resolve(lua_State* L, int host_idx, int socktype, int family,
                                 int protocol, int flags_idx, int extra_flags, const char* fname) {
  host_idx = lua_absindex(L, host_idx);

  // An address already in hand: a fresh node sharing its list, so that the
  // caller's hold survives the user freeing their ai meanwhile.
  if (auto* given = static_cast<LuaAi*>(luaL_testudata(L, host_idx, kAiMeta))) {
    const addrinfo* node = check_ai_node(L, host_idx, fname);
    push_ai(L, given->owner, node);
    return node;
  }
  if (auto* given = static_cast<LuaSa*>(luaL_testudata(L, host_idx, kSaMeta))) {
    int proto = protocol;
    if (proto == 0 && given->addr.family() != AF_UNIX) proto = sock::default_protocol(socktype);
    LuaAi* ai = push_ai(L, nullptr, nullptr);
    ai->owner = std::make_shared<SharedList>();
    ai->owner->list = sock::AddrList::single(given->addr, socktype, proto);
    ai->node = ai->owner->list.first();
    return ai->node;
  }

  // Check every argument before anything that owns memory exists.
  size_t host_len = 0;
  const char* host = nullptr;
  int host_type = lua_type(L, host_idx);
  if (host_type == LUA_TSTRING)
    host = lua_tolstring(L, host_idx, &host_len);
  else if (host_type != LUA_TNIL && host_type != LUA_TNONE)
    raise_type(L, host_idx, fname, family == AF_UNIX ? "path" : "host string");
  // Only unix abstract names may hold zero bytes (they start with one).
  if (host && family != AF_UNIX && std::strlen(host) != host_len)
    sock_argerror(L, host_idx, fname, "host contains a zero byte");

  char port_text[24];
  const char* service = nullptr;
  int port_idx = host_idx + 1;
  if (family != AF_UNIX) {
    switch (lua_type(L, port_idx)) {
      case LUA_TNONE:
      case LUA_TNIL: break;
      case LUA_TNUMBER: {
        long long port = check_whole_number(L, port_idx, fname, "port");
        if (port < 0 || port > 65535) sock_argerror(L, port_idx, fname, "port out of range");
        std::snprintf(port_text, sizeof port_text, "%d", int(port));
        service = port_text;
        break;
      }
      case LUA_TSTRING: {
        size_t len;
        service = lua_tolstring(L, port_idx, &len);
        if (std::strlen(service) != len)
          sock_argerror(L, port_idx, fname, "service contains a zero byte");
        break;
      }
      default: raise_type(L, port_idx, fname, "port number or service name");
    }
  }
  int flags = (flags_idx ? sock_lua_check_flags(L, flags_idx, fname) : 0) | extra_flags;

  // A name that needs a lookup, asked for inside a sock thread by a function
  // whose Lua wrapper can wait for it: hand it to the resolver (lua_dns.hpp).
  if (family != AF_UNIX && host && !(flags & AI_NUMERICHOST) &&
      !sock::host_is_numeric(host, family) && sock_lua_dns_wanted(L, fname)) {
    sock_lua_dns_push_request(L, host, service, socktype, family, protocol, flags, fname);
    return nullptr;
  }

  LuaAi* ai = push_ai(L, nullptr, nullptr);
  sock::AddrList list;
  int rc = 0, sys_errno = 0;
  if (family == AF_UNIX) {
    sock::SockAddr sa;
    sys_errno = sock::sockaddr_from_unix_path(std::string_view(host ? host : "", host_len), sa);
    if (sys_errno)
      rc = EAI_SYSTEM;
    else
      list = sock::AddrList::single(sa, socktype, protocol);
  } else {
    rc = sock::resolve(host, service, socktype, family, protocol, flags, list);
    sys_errno = errno;
  }
  if (rc != 0) {
    const char* message = sock::resolve_error_message(rc, sys_errno);
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_pushstring(L, message);
    return nullptr;
  }
  ai->owner = std::make_shared<SharedList>();
  ai->owner->list = std::move(list);
  ai->node = ai->owner->list.first();
  return ai->node;
}

void sock_lua_open_address(lua_State* L) {
  static const luaL_Reg ai_methods[] = {
      {"free", ai_free},         {"next", ai_next},         {"addrs", ai_addrs},
      {"type", ai_type},         {"family", ai_family},     {"protocol", ai_protocol},
      {"name", ai_name},         {"tostring", ai_tostring}, {nullptr, nullptr}};
  static const luaL_Reg ai_meta[] = {
      {"__gc", ai_gc}, {"__tostring", ai_tostring_meta}, {nullptr, nullptr}};
  static const luaL_Reg sa_methods[] = {{"family", sa_family},
                                        {"port", sa_port},
                                        {"tostring", sa_tostring},
                                        {"addr", sa_addr},
                                        {nullptr, nullptr}};
  static const luaL_Reg sa_meta[] = {
      {"__tostring", sa_tostring}, {"__eq", sa_eq}, {nullptr, nullptr}};
  static const luaL_Reg ip_methods[] = {{"tobinary", ip_tobinary},
                                        {"tostring", ip_tostring},
                                        {"family", ip_family},
                                        {nullptr, nullptr}};
  static const luaL_Reg ip_meta[] = {
      {"__tostring", ip_tostring}, {"__eq", ip_eq}, {nullptr, nullptr}};
  static const luaL_Reg functions[] = {{"addr", l_addr},
                                       {"inet_pton", l_inet_pton},
                                       {"inet_ntop", l_inet_ntop},
                                       {"is_ipv4", l_is_ipv4},
                                       {"is_ipv6", l_is_ipv6},
                                       {"if_nametoindex", l_if_nametoindex},
                                       {"if_indextoname", l_if_indextoname},
                                       {nullptr, nullptr}};

  new_metatable(L, kAiMeta, ai_meta);
  lua_newtable(L);
  luaL_setfuncs(L, ai_methods, 0);
  lua_pushcclosure(L, ai_index, 1);  // ai.addr is computed, the rest are methods
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);

  new_metatable(L, kSaMeta, sa_meta);
  lua_newtable(L);
  luaL_setfuncs(L, sa_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);

  new_metatable(L, kIpMeta, ip_meta);
  lua_newtable(L);
  luaL_setfuncs(L, ip_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);

  luaL_setfuncs(L, functions, 0);
}
