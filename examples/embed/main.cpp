// A host program with its own event loop and its own lua_State, using sock
// linked in statically (sock::lua) instead of loading sock.so from disk.
//
// What it shows:
//   1. registering the module with package.preload, so `require'sock'` in
//      the host's Lua code finds it without any file;
//   2. running Lua code that starts sock threads (an echo server and a
//      client) and returns at once, without calling sock.start();
//   3. driving sock from the host's epoll loop: the host watches
//      sock.epoll_fd() next to its own fds, and calls sock.poll(0) when that
//      fd is readable or when sock.next_timeout() says a sock timer (a sleep,
//      an I/O deadline) is due. sock never blocks the host.
//
// It exits 0 once every sock thread has finished, 1 on any failure, and gives
// up after 10 seconds whatever happens.
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <lua.hpp>
#include <sock/luaopen_sock.h>

namespace {

// The Lua side: an echo server and a client that exchanges three messages,
// sleeping between them (only a timer can wake those sleeps, so the host has
// to honour sock.next_timeout()).
const char* const kScript = R"lua(
local sock = require'sock'   -- found in package.preload: the host put it there

local listener = assert(sock.tcp())
assert(listener:setopt('reuseaddr', true))
assert(listener:listen('127.0.0.1', 0))
local port = listener:getsockname():port()
print(('lua: echo server on 127.0.0.1:%d (%s backend)'):format(port, sock.backend()))

sock.thread(function()           -- the server: a thread per connection
	while true do
		local c = listener:accept()
		if not c then return end  -- the client closed the listener: done
		sock.thread(function()
			local buf = sock.buffer(4096)
			while true do
				local n = c:recv(buf, #buf, sock.clock() + 5)
				if not n or n == 0 then break end
				assert(c:send(buf, n, sock.clock() + 5))
			end
			c:close()
		end)
	end
end)

exchanged = 0                    -- a global the host reads at the end
sock.thread(function()           -- the client
	local c = assert(sock.tcp())
	assert(c:connect('127.0.0.1', port, sock.clock() + 5))
	local buf = sock.buffer(64)
	for i = 1, 3 do
		local msg = 'ping ' .. i
		assert(c:send(msg, nil, sock.clock() + 5))
		assert(c:recvn(buf, #msg, sock.clock() + 5))
		print('lua: client got back: ' .. buf:tostring(1, #msg))
		exchanged = exchanged + 1
		sock.sleep(0.05)
	end
	c:close()
	listener:close()
	print('lua: client done')
end)
-- Returns now: the threads above wait for I/O; the host's loop runs them.
)lua";

double host_now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

[[noreturn]] void die(const char* what, const char* detail) {
  std::fprintf(stderr, "host: %s: %s\n", what, detail);
  std::exit(1);
}

// Calls sock.<name>(arg?) with nresults results left on the stack; a Lua
// error (a sock thread's error, raised out of sock.poll) ends the program.
void call_sock(lua_State* L, int sock_ref, const char* name, bool with_zero, int nresults) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, sock_ref);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  if (with_zero) lua_pushnumber(L, 0);
  if (lua_pcall(L, with_zero ? 1 : 0, nresults, 0) != 0) die(name, lua_tostring(L, -1));
}

// sock.next_timeout(): seconds until sock must run even with no I/O, or -1.
double sock_next_timeout(lua_State* L, int sock_ref) {
  call_sock(L, sock_ref, "next_timeout", false, 1);
  double t = lua_isnil(L, -1) ? -1 : lua_tonumber(L, -1);
  lua_pop(L, 1);
  return t;
}

// sock.poll(0): 1 if it ran something, 0 if nothing was ready, -1 if no sock
// thread waits for anything any more.
int sock_poll0(lua_State* L, int sock_ref) {
  call_sock(L, sock_ref, "poll", true, 2);
  int r = lua_toboolean(L, -2) ? 1 : (lua_isstring(L, -1) && !std::strcmp(lua_tostring(L, -1), "empty")) ? -1 : 0;
  lua_pop(L, 2);
  return r;
}

}  // namespace

int main() {
  lua_State* L = luaL_newstate();
  if (!L) die("lua", "cannot create a state");
  luaL_openlibs(L);

  // 1. The module, without a file: package.preload.sock = luaopen_sock.
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_sock);
  lua_setfield(L, -2, "sock");
  lua_pop(L, 2);

  // 2. The Lua program. It starts its threads and returns.
  if (luaL_loadbuffer(L, kScript, std::strlen(kScript), "=embedded script") != 0 || lua_pcall(L, 0, 0, 0) != 0)
    die("script", lua_tostring(L, -1));

  lua_getglobal(L, "require");
  lua_pushstring(L, "sock");
  if (lua_pcall(L, 1, 1, 0) != 0) die("require", lua_tostring(L, -1));
  int sock_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  call_sock(L, sock_ref, "epoll_fd", false, 1);
  int sock_fd = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);

  // 3. The host's own loop: sock's fd, and a timer of the host's own (its
  // "other work", ticking every 10 ms).
  int ep = epoll_create1(EPOLL_CLOEXEC);
  int tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (ep < 0 || tick_fd < 0) die("setup", std::strerror(errno));
  itimerspec every10ms{{0, 10000000}, {0, 10000000}};
  timerfd_settime(tick_fd, 0, &every10ms, nullptr);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = 1;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, sock_fd, &ev) != 0) die("epoll_ctl sock fd", std::strerror(errno));
  ev.data.u32 = 2;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, tick_fd, &ev) != 0) die("epoll_ctl timerfd", std::strerror(errno));

  const double give_up = host_now() + 10;
  unsigned long by_fd = 0, by_timer = 0, ticks = 0;
  for (;;) {
    double now = host_now();
    if (now >= give_up) die("loop", "sock threads did not finish within 10 seconds");
    double t = sock_next_timeout(L, sock_ref);  // < 0: no sock timer armed
    double due = t < 0 ? -1 : now + t;
    double wait = give_up - now;
    if (t >= 0 && t < wait) wait = t;
    int ms = (int)std::ceil(wait * 1000);  // rounded up: never wake early and spin

    epoll_event events[4];
    int n = epoll_wait(ep, events, 4, ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait", std::strerror(errno));
    }
    bool sock_readable = false;
    for (int i = 0; i < n; i++) {
      if (events[i].data.u32 == 1) {
        sock_readable = true;
      } else {
        uint64_t expirations;
        if (read(tick_fd, &expirations, sizeof expirations) == (ssize_t)sizeof expirations) ticks += expirations;
      }
    }
    bool timer_due = due >= 0 && host_now() >= due;
    if (sock_readable)
      by_fd++;
    else if (timer_due)
      by_timer++;
    else
      continue;  // only the host's own work woke us

    // Let sock run whatever is ready now; it never blocks here.
    int r;
    while ((r = sock_poll0(L, sock_ref)) == 1) {
    }
    if (r < 0) break;  // no sock thread waits for anything: all done
  }

  lua_getglobal(L, "exchanged");
  long exchanged = (long)lua_tointeger(L, -1);
  lua_pop(L, 1);
  std::printf("host: sock finished: %lu wakeups for sock's fd, %lu for sock's timers, %lu host ticks meanwhile\n",
              by_fd, by_timer, ticks);
  luaL_unref(L, LUA_REGISTRYINDEX, sock_ref);
  lua_close(L);
  close(tick_fd);
  close(ep);

  if (exchanged != 3 || by_fd == 0 || by_timer == 0) {
    std::printf("host: FAILED (exchanged %ld of 3 messages)\n", exchanged);
    return 1;
  }
  std::printf("host: OK, 3 messages echoed\n");
  return 0;
}
