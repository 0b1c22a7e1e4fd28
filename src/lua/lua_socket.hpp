// The socket userdata: a core Socket plus the two wait records (read side,
// write side) its operations use, so waiting allocates nothing.
#pragma once

#include <netinet/in.h>

#include <memory>
#include <string>

#include "lua/scheduler.hpp"
#include "sock/socket.hpp"

struct LuaWait;
using PushResults = int (*)(lua_State* co, LuaWait& w);

// Binds an operation to the sock thread waiting for it.
struct LuaWait {
  sock::Operation op;
  struct LuaSocket* socket = nullptr;  // the socket this record belongs to
  lua_State* thread = nullptr;   // the waiting thread, while it waits
  bool last_short = false;       // the last recv returned less than asked
  PushResults push_results = nullptr;
};

// Address buffers the kernel fills or reads while an op waits. Only
// listeners and datagram sockets need them, so they are made on first use
// rather than carried by every connection.
struct SocketAddresses {
  sockaddr_storage rd{};  // recvnext: source; accept: peer
  sockaddr_storage wr{};  // sendto: destination
};

// An inet or inet6 address, small enough to keep in every accepted socket.
union CompactAddr {
  sockaddr sa;
  sockaddr_in in;
  sockaddr_in6 in6;
};

struct LuaSocket {
  sock::Socket s;
  Scheduler* sched = nullptr;
  LuaWait rd, wr;
  std::unique_ptr<SocketAddresses> addrs;
  // Accepted sockets: both ends, turned into the remote_addr/remote_port/
  // local_addr/local_port fields only when Lua first looks at a field.
  CompactAddr peer{}, local{};
  bool fields_pending = false;
  bool bound = false;
  bool has_fields = false;     // the uservalue table exists
  // Buffered reads (s:read/readline/...): bytes received but not yet consumed.
  std::string pending;
  size_t pending_pos = 0;
};

extern const char* const SOCK_SOCKET;

LuaSocket* sock_lua_checksocket(lua_State* L, int idx, const char* fname);

// Run `w`'s op: try it now, else wait (yielding the thread) until it
// finishes or `expires` passes. Returns what push_results pushes.
int sock_lua_run_op(lua_State* L, LuaSocket* ls, LuaWait& w, double expires, PushResults push_results);

// An optional `expires` argument: < 0 when absent.
double sock_lua_optexpires(lua_State* L, int idx, const char* fname);

// Push nil and the normalized error for `code` (a positive errno or sock::ERR_*).
int sock_lua_fail(lua_State* L, int code);

// Module table on top; the scheduler is upvalue 1 of the running function.
void sock_lua_open_socket(lua_State* L, int sched_idx);
