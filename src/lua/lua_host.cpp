// What a host program needs to drive sock from its own event loop: it watches
// sock.epoll_fd() for readability and calls sock.poll(0) when the fd is
// readable or when sock.next_timeout() says a timer is due.
#include "lua/lua_host.hpp"

#include "lua/scheduler.hpp"
#include "sock/clock.hpp"

// sock.next_timeout() -> seconds | nil
//   0        sock has work now: call sock.poll(0) without waiting
//   s > 0    the earliest sleep or I/O deadline is due in s seconds
//   nil      no timer is armed (or none ends before 2^31-1 seconds): only
//            the poller fd becoming readable gives sock work
static int l_next_timeout(lua_State* L) {
  Scheduler* S = sched_of(L);
  sock::Loop* loop = S->loop.get();
  if (!loop) {  // no I/O and no sleep has happened yet
    lua_pushnil(L);
    return 1;
  }
  if (loop->has_ready()) {
    lua_pushnumber(L, 0);
    return 1;
  }
  double due = loop->next_timer_due();
  if (due < 0) {
    lua_pushnil(L);
    return 1;
  }
  double wait = due - sock::monotonic_now();
  if (wait >= 2147483647.0) {  // a sleep without end: as good as no timer
    lua_pushnil(L);
    return 1;
  }
  lua_pushnumber(L, wait > 0 ? wait : 0);
  return 1;
}

void sock_lua_open_host(lua_State* L, int sched_idx) {
  static const luaL_Reg functions[] = {{"next_timeout", l_next_timeout}, {nullptr, nullptr}};
  sched_idx = lua_absindex(L, sched_idx);
  lua_pushvalue(L, sched_idx);
  luaL_setfuncs(L, functions, 1);
}
