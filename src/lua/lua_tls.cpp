// The TLS engine (sock/tls.hpp) for the Lua half: contexts and sessions as
// userdata whose methods never wait. lua/sock_tls.lua moves the ciphertext
// over the tcp socket and does the waiting. Without OpenSSL only
// sock._tls_available = false is registered.
#include "lua/lua_tls.hpp"

#ifdef SOCK_HAVE_TLS
#include "lua/lua_buffer.hpp"
#include "sock/tls.hpp"

#include <cstring>
#include <memory>
#include <new>
#include <string>

using sock::tls::Context;
using sock::tls::ContextOptions;
using sock::tls::Result;
using sock::tls::Session;
using sock::tls::Status;

static const char* const CONTEXT_MT = "sock.tls_context";
static const char* const SESSION_MT = "sock.tls_session";

struct LuaContext {
  std::shared_ptr<Context> ctx;
};

struct LuaSession {
  std::unique_ptr<Session> session;
  // Plaintext read ahead for the buffered reads (readline...); read() and
  // the buffered reads take from it first.
  std::string ahead;
  size_t ahead_pos = 0;
  size_t ahead_len() const { return ahead.size() - ahead_pos; }
  // An error met by read() after it already had plaintext to return: given
  // by the next read() or read_ahead(), as it would have been.
  bool has_deferred = false;
  Result deferred;
};

// The deferred error, if there is one: pushed (status, message, pending) and
// forgotten. Returns the number of values pushed, 0 for none.
static int push_deferred(lua_State* L, LuaSession* s);

template <class T>
static void destroy(lua_State* L, const char* mt) {
  T* p = static_cast<T*>(luaL_checkudata(L, 1, mt));
  p->~T();
  new (p) T();  // stays valid (and empty) until collected
}

static int l_context_gc(lua_State* L) {
  destroy<LuaContext>(L, CONTEXT_MT);
  return 0;
}

static std::string field_string(lua_State* L, int t, const char* key) {
  lua_getfield(L, t, key);
  std::string s;
  if (lua_type(L, -1) == LUA_TSTRING) {
    size_t len;
    const char* p = lua_tolstring(L, -1, &len);
    s.assign(p, len);
  }
  lua_pop(L, 1);
  return s;
}

// _tls_context(opts) -> context | nil, err. opts was checked by the Lua
// half: string fields, verify/server booleans, alpn a list of strings.
static int l_context(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  ContextOptions o;
  lua_getfield(L, 1, "server");
  o.server = lua_toboolean(L, -1);
  lua_getfield(L, 1, "verify");
  o.verify = lua_toboolean(L, -1);
  lua_getfield(L, 1, "session_reuse");
  o.session_reuse = lua_toboolean(L, -1);
  lua_pop(L, 3);
  o.ca_file = field_string(L, 1, "ca_file");
  o.ca_dir = field_string(L, 1, "ca_dir");
  o.ca_pem = field_string(L, 1, "ca");
  o.cert_file = field_string(L, 1, "cert_file");
  o.cert_pem = field_string(L, 1, "cert");
  o.key_file = field_string(L, 1, "key_file");
  o.key_pem = field_string(L, 1, "key");
  o.min_version = field_string(L, 1, "min_version");
  o.max_version = field_string(L, 1, "max_version");
  o.ciphers = field_string(L, 1, "ciphers");
  o.ciphersuites = field_string(L, 1, "ciphersuites");
  lua_getfield(L, 1, "alpn");
  if (lua_istable(L, -1)) {
    for (int i = 1;; i++) {
      lua_rawgeti(L, -1, i);
      if (lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 1);
        break;
      }
      o.alpn.emplace_back(lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);

  std::string err;
  std::shared_ptr<Context> ctx = Context::create(o, &err);
  if (!ctx) {
    lua_pushnil(L);
    lua_pushstring(L, err.c_str());
    return 2;
  }
  LuaContext* lc = new (lua_newuserdata(L, sizeof(LuaContext))) LuaContext();
  lc->ctx = std::move(ctx);
  luaL_setmetatable(L, CONTEXT_MT);
  return 1;
}

// The session methods have the sessions' metatable as upvalue 1: comparing
// with it is cheaper than luaL_checkudata's lookup of the name in the
// registry, on a path taken several times per record. Anything else goes to
// luaL_checkudata, for its error.
static LuaSession* check_session(lua_State* L) {
  LuaSession* s = static_cast<LuaSession*>(lua_touserdata(L, 1));
  if (s && lua_getmetatable(L, 1)) {
    bool same = lua_rawequal(L, -1, lua_upvalueindex(1));
    lua_pop(L, 1);
    if (!same) s = nullptr;
  } else {
    s = nullptr;
  }
  if (!s) s = static_cast<LuaSession*>(luaL_checkudata(L, 1, SESSION_MT));
  if (!s->session) sock_error(L, "TLS session used after it was freed");
  return s;
}

// _tls_session(context, servername) -> session | nil, err
static int l_session(lua_State* L) {
  LuaContext* lc = static_cast<LuaContext*>(luaL_checkudata(L, 1, CONTEXT_MT));
  const char* name = luaL_optstring(L, 2, "");
  if (!lc->ctx) return luaL_error(L, "TLS context used after it was freed");
  std::string err;
  std::unique_ptr<Session> session = Session::create(lc->ctx, name, &err);
  if (!session) {
    lua_pushnil(L);
    lua_pushstring(L, err.c_str());
    return 2;
  }
  LuaSession* ls = new (lua_newuserdata(L, sizeof(LuaSession))) LuaSession();
  ls->session = std::move(session);
  luaL_setmetatable(L, SESSION_MT);
  return 1;
}

static int l_session_free(lua_State* L) {
  destroy<LuaSession>(L, SESSION_MT);
  return 0;
}

static const char* status_name(Status s) {
  switch (s) {
    case Status::done: return "done";
    case Status::want_read: return "want_read";
    case Status::want_write: return "want_write";
    case Status::closed: return "closed";
    case Status::closed_abruptly: return "closed_abruptly";
    case Status::error: return "error";
  }
  return "error";
}

// status, then the byte count (done) or OpenSSL's message (error), then
// how many bytes of ciphertext wait to be taken (so that the caller asks
// for them only when there are some).
static int push_result(lua_State* L, const Result& r, const Session& s) {
  lua_pushstring(L, status_name(r.status));
  if (r.status == Status::error)
    lua_pushstring(L, r.message.c_str());
  else
    lua_pushnumber(L, (lua_Number)r.bytes);
  lua_pushnumber(L, (lua_Number)s.pending_output());
  return 3;
}

// s:feed(buf, len): ciphertext received into a sock.buffer (or string, cdata).
static int l_feed(lua_State* L) {
  LuaSession* s = check_session(L);
  size_t cap;
  const char* p = sock_lua_checkbuffer(L, 2, false, &cap, "tls feed");
  size_t len = (size_t)luaL_checknumber(L, 3);
  if (len > cap) return luaL_error(L, "tls feed: length beyond the buffer");
  s->session->feed(p, len);
  return 0;
}

static int l_feed_eof(lua_State* L) {
  check_session(L)->session->feed_eof();
  return 0;
}

// s:take() -> ciphertext to send | nil when there is none
static int l_take(lua_State* L) {
  LuaSession* s = check_session(L);
  size_t pending = s->session->pending_output();
  if (pending == 0) {
    lua_pushnil(L);
    return 1;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  while (pending > 0) {
    char* dst = luaL_prepbuffer(&b);
    size_t n = s->session->take(dst, pending < LUAL_BUFFERSIZE ? pending : LUAL_BUFFERSIZE);
    if (n == 0) break;
    luaL_addsize(&b, n);
    pending -= n;
  }
  luaL_pushresult(&b);
  return 1;
}

static int l_handshake(lua_State* L) {
  Session& s = *check_session(L)->session;
  return push_result(L, s.handshake(), s);
}
static int l_shutdown(lua_State* L) {
  Session& s = *check_session(L)->session;
  return push_result(L, s.shutdown(), s);
}

static int push_deferred(lua_State* L, LuaSession* s) {
  if (!s->has_deferred) return 0;
  s->has_deferred = false;
  Result r = std::move(s->deferred);
  s->deferred = Result{};
  return push_result(L, r, *s->session);
}

// s:read(buf, len, [offset]) -> status, n | msg: plaintext into a buffer
// (`offset` bytes in), from the read-ahead first. When more records are in
// hand (a bulk sender's come several to a tcp recv) it decrypts them too, up
// to len, so that one call returns what is there, as a tcp recv does; what
// stops it is left for the next call (an error is kept for it).
static int l_read(lua_State* L) {
  LuaSession* s = check_session(L);
  size_t cap;
  char* p = sock_lua_checkbuffer(L, 2, true, &cap, "recv");
  size_t len = (size_t)luaL_checknumber(L, 3);
  size_t offset = (size_t)luaL_optnumber(L, 4, 0);
  if (cap != (size_t)-1) {
    if (offset > cap) return luaL_error(L, "recv: offset beyond the buffer");
    if (len > cap - offset) len = cap - offset;
  }
  p += offset;
  if (size_t have = s->ahead_len()) {
    size_t n = have < len ? have : len;
    std::memcpy(p, s->ahead.data() + s->ahead_pos, n);
    s->ahead_pos += n;
    lua_pushliteral(L, "done");
    lua_pushnumber(L, (lua_Number)n);
    lua_pushnumber(L, (lua_Number)s->session->pending_output());
    return 3;
  }
  if (int n = push_deferred(L, s)) return n;
  Result r = s->session->read(p, len);
  if (r.status == Status::done && r.bytes > 0) {
    while (r.bytes < len && s->session->has_pending_input()) {
      Result more = s->session->read(p + r.bytes, len - r.bytes);
      if (more.status != Status::done) {
        // want_read: nothing whole is left; closed and closed_abruptly come
        // again by themselves; an error would not (OpenSSL's next verdict
        // on a failed session is a different one), so it is kept.
        if (more.status == Status::error) {
          s->deferred = std::move(more);
          s->has_deferred = true;
        }
        break;
      }
      if (more.bytes == 0) break;
      r.bytes += more.bytes;
    }
  }
  return push_result(L, r, *s->session);
}

// s:write(buf, offset, len) -> status, n | msg: plaintext from a string,
// sock.buffer or cdata, `offset` bytes in (so a long send needs no copies).
static int l_write(lua_State* L) {
  LuaSession* s = check_session(L);
  size_t cap;
  const char* p = sock_lua_checkbuffer(L, 2, false, &cap, "send");
  size_t offset = (size_t)luaL_checknumber(L, 3);
  size_t len = (size_t)luaL_checknumber(L, 4);
  if (cap != (size_t)-1 && (offset > cap || len > cap - offset)) return luaL_error(L, "send: length beyond the buffer");
  // With partial writes on, SSL_write stops after each record; a memory BIO
  // takes every record, so all of it is written now and the caller sends
  // it in one go rather than record by record. (A failure after the first
  // record comes again on the next call.)
  Result r = s->session->write(p + offset, len);
  while (r.status == Status::done && r.bytes > 0 && r.bytes < len) {
    Result more = s->session->write(p + offset + r.bytes, len - r.bytes);
    if (more.status != Status::done || more.bytes == 0) break;
    r.bytes += more.bytes;
  }
  return push_result(L, r, *s->session);
}

// s:read_ahead() -> status, n | msg: one read appended to the read-ahead.
static int l_read_ahead(lua_State* L) {
  LuaSession* s = check_session(L);
  if (int n = push_deferred(L, s)) return n;
  if (s->ahead_pos > 0 && s->ahead_pos == s->ahead.size()) {
    s->ahead.clear();
    s->ahead_pos = 0;
  }
  size_t old = s->ahead.size();
  const size_t chunk = 16384;  // one TLS record at most
  s->ahead.resize(old + chunk);
  Result r = s->session->read(&s->ahead[old], chunk);
  s->ahead.resize(old + (r.status == Status::done ? r.bytes : 0));
  return push_result(L, r, *s->session);
}

// s:buffered() -> bytes read ahead and not consumed
static int l_buffered(lua_State* L) {
  lua_pushnumber(L, (lua_Number)check_session(L)->ahead_len());
  return 1;
}

// s:find(delim) -> offset of delim in the read-ahead (0-based) | nil
static int l_find(lua_State* L) {
  LuaSession* s = check_session(L);
  size_t dlen;
  const char* d = luaL_checklstring(L, 2, &dlen);
  size_t at = s->ahead.find(d, s->ahead_pos, dlen);
  if (at == std::string::npos) {
    lua_pushnil(L);
  } else {
    lua_pushnumber(L, (lua_Number)(at - s->ahead_pos));
  }
  return 1;
}

// s:consume(n, [skip]) -> the next n bytes of the read-ahead, then skip more.
static int l_consume(lua_State* L) {
  LuaSession* s = check_session(L);
  size_t n = (size_t)luaL_checknumber(L, 2);
  size_t skip = (size_t)luaL_optnumber(L, 3, 0);
  size_t have = s->ahead_len();
  if (n > have) n = have;
  lua_pushlstring(L, s->ahead.data() + s->ahead_pos, n);
  s->ahead_pos += n + (skip < have - n ? skip : have - n);
  if (s->ahead_pos == s->ahead.size()) {
    s->ahead.clear();
    s->ahead_pos = 0;
  }
  return 1;
}

static int l_handshake_done(lua_State* L) {
  lua_pushboolean(L, check_session(L)->session->handshake_done());
  return 1;
}

static int l_session_reused(lua_State* L) {
  lua_pushboolean(L, check_session(L)->session->session_reused());
  return 1;
}

// s:peer_certificate() -> {subject=, issuer=, names={...}, not_after=} | nil
static int l_peer_certificate(lua_State* L) {
  sock::tls::PeerCertificate pc = check_session(L)->session->peer_certificate();
  if (!pc.present) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, 0, 4);
  lua_pushstring(L, pc.subject.c_str());
  lua_setfield(L, -2, "subject");
  lua_pushstring(L, pc.issuer.c_str());
  lua_setfield(L, -2, "issuer");
  lua_createtable(L, (int)pc.names.size(), 0);
  for (size_t i = 0; i < pc.names.size(); i++) {
    lua_pushlstring(L, pc.names[i].data(), pc.names[i].size());
    lua_rawseti(L, -2, (int)i + 1);
  }
  lua_setfield(L, -2, "names");
  lua_pushnumber(L, (lua_Number)pc.not_after);
  lua_setfield(L, -2, "not_after");
  return 1;
}

static int l_alpn(lua_State* L) {
  std::string a = check_session(L)->session->alpn();
  if (a.empty())
    lua_pushnil(L);
  else
    lua_pushlstring(L, a.data(), a.size());
  return 1;
}

static int l_version(lua_State* L) {
  lua_pushstring(L, check_session(L)->session->version().c_str());
  return 1;
}

void sock_lua_open_tls(lua_State* L) {
  luaL_newmetatable(L, CONTEXT_MT);
  lua_pushcfunction(L, l_context_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);

  static const luaL_Reg session_methods[] = {
      {"feed", l_feed},
      {"feed_eof", l_feed_eof},
      {"take", l_take},
      {"handshake", l_handshake},
      {"shutdown", l_shutdown},
      {"read", l_read},
      {"write", l_write},
      {"read_ahead", l_read_ahead},
      {"buffered", l_buffered},
      {"find", l_find},
      {"consume", l_consume},
      {"handshake_done", l_handshake_done},
      {"session_reused", l_session_reused},
      {"peer_certificate", l_peer_certificate},
      {"alpn", l_alpn},
      {"version", l_version},
      {"free", l_session_free},
      {nullptr, nullptr}};
  luaL_newmetatable(L, SESSION_MT);
  lua_pushcfunction(L, l_session_free);
  lua_setfield(L, -2, "__gc");
  lua_newtable(L);
  lua_pushvalue(L, -2);  // the metatable, check_session's upvalue
  luaL_setfuncs(L, session_methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);

  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "_tls_available");
  lua_pushcfunction(L, l_context);
  lua_setfield(L, -2, "_tls_context");
  lua_pushcfunction(L, l_session);
  lua_setfield(L, -2, "_tls_session");
}

#else  // no OpenSSL

void sock_lua_open_tls(lua_State* L) {
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "_tls_available");
}

#endif
