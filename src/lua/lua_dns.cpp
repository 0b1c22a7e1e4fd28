// Non-blocking name lookups for sock threads; see lua_dns.hpp.
//
// Lifetimes. One DnsState per Lua state (a userdata anchored in the
// registry) owns the resolver (its wake-up is made with the module, its
// worker threads on the first lookup) and the wakeup op on it.
// A Lookup (the request object) lives on the waiting thread's stack while
// the thread waits, which keeps it alive; the resolver's job points back at
// it through job->user. Whichever ends first -- the lookup,
// its deadline, the state -- cancels what the others would still do.
#include "lua/lua_dns.hpp"

#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "lua/lua_address.hpp"
#include "lua/lua_socket.hpp"
#include "lua/scheduler.hpp"
#include "sock/address.hpp"
#include "sock/clock.hpp"
#include "sock/error.hpp"
#include "sock/resolver.hpp"


namespace {

char lookup_marker;

constexpr const char* kDnsKey = "sock.dns";
constexpr const char* kLookupMeta = "sock.lookup";
constexpr unsigned kResolverThreads = 4;

struct DnsState {
  Scheduler* sched = nullptr;
  sock::Resolver* resolver = nullptr;  // made with the module (threads start on demand)
  unsigned fork_gen = 0;               // sched_fork_generation() when the resolver was made
  sock::IoHandle io;                   // the resolver's wake-up
  sock::Operation op;                  // waits on it while lookups are pending
  double delay = -1;                   // test hook value set before the resolver exists
  bool closed = false;                 // the Lua state is closing
};

struct Lookup {
  WaitHead head;  // first: a lookup is a wait record
  DnsState* dns = nullptr;
  const char* fname = "addr";  // for error messages (a static string)
  std::string host, service;
  bool has_host = false, has_service = false;
  int socktype = 0, family = 0, protocol = 0, flags = 0;
  bool started = false;
  sock::ResolveJob* job = nullptr;          // submitted, not finished
  std::unique_ptr<sock::ResolveJob> done;   // finished, results not yet pushed
  bool armed = false;                       // a thread waits for it
  double expires = -1;
  sock::Timer deadline;
};

DnsState* dns_state(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, kDnsKey);
  auto* d = static_cast<DnsState*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  return d;
}

// Whether L may wait: the sock thread itself, or a coroutine sock made inside
// it (sock.cowrap, 5.1's sock.pcall). Mirrors sched_check_thread, without raising.
bool can_wait(lua_State* L, Scheduler* S) { return S->current && sched_can_wait(L, S); }

// --- results -----------------------------------------------------------------

int push_outcome(lua_State* L, int eai, int sys_errno, sock::AddrList& list) {
  if (eai != 0) {
    lua_pushnil(L);
    lua_pushstring(L, sock::resolve_error_message(eai, sys_errno));
    return 2;
  }
  sock_lua_push_addrlist(L, list);
  return 1;
}

int push_lookup_result(lua_State* co, void* ctx) {
  Lookup* lk = static_cast<Lookup*>(ctx);
  std::unique_ptr<sock::ResolveJob> job = std::move(lk->done);
  if (!job) return sock_lua_fail(co, ETIMEDOUT);
  return push_outcome(co, job->eai, job->sys_errno, job->result);
}

int push_timeout(lua_State* co, void*) { return sock_lua_fail(co, ETIMEDOUT); }

// Resolve on the calling thread: outside sock threads, and when no worker
// can be had.
int resolve_now(lua_State* L, Lookup* lk) {
  sock::AddrList list;
  errno = 0;
  int eai = sock::resolve(lk->has_host ? lk->host.c_str() : nullptr,
                          lk->has_service ? lk->service.c_str() : nullptr, lk->socktype, lk->family,
                          lk->protocol, lk->flags, list);
  int sys_errno = errno;
  return push_outcome(L, eai, sys_errno, list);
}

// --- the loop's side -----------------------------------------------------------

void dns_ready(sock::Operation* op);

// Keep the wakeup op armed while lookups are pending. False if it cannot be.
bool arm(DnsState* d) {
  if (d->op.pending) return true;
  sock::Loop* loop = sched_loop_here(d->sched);
  if (!loop) return false;
  d->op.prepare(sock::OpKind::wakeup, &d->io);
  d->op.owner = d;
  d->op.on_complete = dns_ready;
  return loop->start(d->op, -1) == 0;
}

void dns_ready(sock::Operation* op) {
  DnsState* d = static_cast<DnsState*>(op->owner);
  if (d->closed || !d->resolver || op->result < 0) return;
  Scheduler* S = d->sched;
  // One at a time: resuming a thread may raise its error out of the loop
  // (error_pending), and the rest must then wait for the next turn.
  while (!S->error_pending) {
    std::unique_ptr<sock::ResolveJob> job = d->resolver->take();
    if (!job) break;
    Lookup* lk = static_cast<Lookup*>(job->user);
    lk->job = nullptr;
    lk->done = std::move(job);
    if (S->loop) S->loop->remove_timer(lk->deadline);
    lk->armed = false;
    sched_complete_wait(S, &lk->head, push_lookup_result, lk);
  }
  if (d->resolver->finished() > 0) d->resolver->signal();  // left for the next turn
  if (d->resolver->pending() > 0) arm(d);  // (it cannot fail: the fd is registered)
}

void lookup_timed_out(sock::Timer* t) {
  Lookup* lk = static_cast<Lookup*>(t->owner);
  DnsState* d = lk->dns;
  if (d->resolver) d->resolver->cancel(lk->job);
  lk->job = nullptr;
  bool was_armed = lk->armed;
  lk->armed = false;
  if (was_armed) sched_complete_wait(d->sched, &lk->head, push_timeout, nullptr);
}

// A fork's child: the resolver's worker threads stayed in the parent, and its
// lock may have been held by one of them when it forked. Leave the object
// alone for good (it is never freed) and close our copy of its wake-up;
// lookups here get a resolver of their own.
void drop_parent_resolver(DnsState* d) {
  if (!d->resolver || d->fork_gen == sched_fork_generation()) return;
  d->resolver->drop_after_fork();
  d->resolver = nullptr;
  d->io = sock::IoHandle{};
  // The wakeup op on the parent's wake-up belonged to the parent's loop
  // (it may still look pending there: a lookup had timed out, say); ours
  // starts afresh, or it would never be armed here.
  d->op = sock::Operation{};
}

bool ensure_resolver(DnsState* d) {
  drop_parent_resolver(d);
  if (d->resolver) return true;
  auto* r = new (std::nothrow) sock::Resolver(kResolverThreads);
  if (!r) return false;
  if (r->open() < 0) {
    delete r;
    return false;
  }
  if (d->delay >= 0) r->set_delay(d->delay);
  d->resolver = r;
  d->fork_gen = sched_fork_generation();
  d->io = sock::IoHandle{};
  d->io.fd = r->fd();
  return true;
}

// --- Lua functions ---------------------------------------------------------------

Lookup* check_lookup(lua_State* L, int idx) {
  auto* lk = static_cast<Lookup*>(luaL_testudata(L, idx, kLookupMeta));
  if (!lk)
    sock_error(L, "bad argument #%d to '_lookup' (lookup request expected, got %s)", idx, luaL_typename(L, idx));
  return lk;
}

// WaitKind of lookups: the thread has yielded; hand the lookup to the
// resolver's workers, or resolve it here when none can be had.
int lookup_arm(Scheduler* S, lua_State* L, lua_State* co, WaitHead* h) {
  Lookup* lk = sched_record<Lookup>(h);
  DnsState* d = lk->dns;
  sock::Loop* loop = sched_loop_here(S);
  if (!loop || !ensure_resolver(d)) return resolve_now(co, lk);
  sock::ResolveJob* raw = nullptr;
  {
    std::unique_ptr<sock::ResolveJob> job(new (std::nothrow) sock::ResolveJob());
    if (job) {
      job->host = lk->host;
      job->has_host = lk->has_host;
      job->service = lk->service;
      job->has_service = lk->has_service;
      job->socktype = lk->socktype;
      job->family = lk->family;
      job->protocol = lk->protocol;
      job->flags = lk->flags;
      job->user = lk;
      raw = job.get();
      if (d->resolver->submit(job) < 0) raw = nullptr;  // `job` still owns it and frees it
    }
  }
  if (!raw) return resolve_now(co, lk);
  if (!arm(d)) {
    d->resolver->cancel(raw);
    return resolve_now(co, lk);
  }
  lk->job = raw;
  if (lk->expires >= 0) {
    lk->deadline.owner = lk;
    lk->deadline.on_fire = lookup_timed_out;
    loop->add_timer(lk->deadline, lk->expires);
  }
  lk->armed = true;
  sched_armed(S, L, co, h);
  return -1;
}

bool lookup_withdraw(Scheduler* S, lua_State*, WaitHead* h) {
  Lookup* lk = sched_record<Lookup>(h);
  lk->armed = false;
  if (S->loop) S->loop->remove_timer(lk->deadline);
  if (lk->dns->resolver && lk->job) lk->dns->resolver->cancel(lk->job);
  lk->job = nullptr;
  return false;
}

const WaitKind lookup_kind = {lookup_arm, lookup_withdraw};

// sock._lookup(req, [expires]) -> ai | nil, err
int l_lookup(lua_State* L) {
  Lookup* lk = check_lookup(L, 1);
  double expires = sock_lua_optexpires(L, 2, lk->fname);
  if (lk->started) sock_error(L, "%s: this lookup request was already used", lk->fname);
  lk->started = true;
  DnsState* d = lk->dns;
  Scheduler* S = d->sched;
  if (!can_wait(L, S)) return resolve_now(L, lk);
  sched_loop(L, S);  // (made here, where it may raise, rather than when arming)
  if (sock_lua_deadline_passed(expires)) return sock_lua_fail(L, ETIMEDOUT);
  lk->expires = expires;
  lua_settop(L, 1);  // the request: all the wait keeps
  return sched_wait(L, S, &lk->head, &lookup_kind, lk->fname);
}

int l_lookup_gc(lua_State* L) {
  auto* lk = static_cast<Lookup*>(luaL_testudata(L, 1, kLookupMeta));  // Lua code may call it
  if (!lk) return 0;
  DnsState* d = lk->dns;
  if (d) {
    // Only reachable here when no thread waits on it, or when the state closes.
    if (d->sched->loop) d->sched->loop->remove_timer(lk->deadline);
    if (!d->closed && d->resolver && lk->job) d->resolver->cancel(lk->job);
  }
  lk->job = nullptr;
  lk->~Lookup();
  new (lk) Lookup();  // inert, should a finalizer ever run twice
  return 0;
}

int l_lookup_tostring(lua_State* L) {
  auto* lk = check_lookup(L, 1);
  lua_pushfstring(L, "sock.lookup (%s): %p", lk->has_host ? lk->host.c_str() : "*", (void*)lk);
  return 1;
}

int l_dns_gc(lua_State* L) {
  auto* d = static_cast<DnsState*>(lua_touserdata(L, 1));
  if (!d || d != dns_state(L) || d->closed) return 0;  // Lua code may call it
  d->closed = true;
  drop_parent_resolver(d);
  if (d->resolver) {
    Scheduler* S = d->sched;
    if (sock::Loop* loop = S->closed ? nullptr : sched_loop_here(S)) loop->close_handle(d->io);
    delete d->resolver;  // joins its workers, closes the wake-up
    d->resolver = nullptr;
  }
  d->~DnsState();
  return 0;
}

// sock._resolver_delay(seconds): test hook, every later lookup on a worker
// waits this long first (0 turns it off). Returns the previous value.
int l_resolver_delay(lua_State* L) {
  DnsState* d = static_cast<DnsState*>(lua_touserdata(L, lua_upvalueindex(1)));
  double prev = d->resolver ? d->resolver->delay() : (d->delay > 0 ? d->delay : 0);
  if (!lua_isnoneornil(L, 1)) {
    double s = luaL_checknumber(L, 1);
    d->delay = s > 0 ? s : 0;
    if (d->resolver) d->resolver->set_delay(d->delay);
  }
  lua_pushnumber(L, prev);
  return 1;
}

// sock._resolver_stats() -> pending lookups, worker threads
int l_resolver_stats(lua_State* L) {
  DnsState* d = static_cast<DnsState*>(lua_touserdata(L, lua_upvalueindex(1)));
  sock_pushinteger(L, d->resolver ? (long long)d->resolver->pending() : 0);
  sock_pushinteger(L, d->resolver ? (long long)d->resolver->threads() : 0);
  return 2;
}

}  // namespace

bool sock_lua_dns_wanted(lua_State* L, const char* fname) {
  static const char* const wrapped[] = {"addr", "connect", "bind", "listen", "sendto"};
  bool known = false;
  for (const char* name : wrapped) known = known || std::strcmp(name, fname) == 0;
  if (!known) return false;
  DnsState* d = dns_state(L);
  return d && !d->closed && can_wait(L, d->sched);
}

void sock_lua_dns_push_request(lua_State* L, const char* host, const char* service, int socktype,
                               int family, int protocol, int flags, const char* fname) {
  DnsState* d = dns_state(L);
  lua_pushlightuserdata(L, &lookup_marker);
  void* mem = sock_newuserdata(L, sizeof(Lookup));
  auto* lk = new (mem) Lookup();
  luaL_setmetatable(L, kLookupMeta);
  lk->dns = d;
  lk->fname = fname;
  lk->has_host = host != nullptr;
  if (host) lk->host = host;
  lk->has_service = service != nullptr;
  if (service) lk->service = service;
  lk->socktype = socktype;
  lk->family = family;
  lk->protocol = protocol;
  lk->flags = flags;
}

void sock_lua_open_dns(lua_State* L, int sched_idx) {
  sched_idx = lua_absindex(L, sched_idx);
  int module = lua_gettop(L);
  auto* d = static_cast<DnsState*>(sock_newuserdata(L, sizeof(DnsState)));
  new (d) DnsState();
  d->sched = static_cast<Scheduler*>(lua_touserdata(L, sched_idx));
  lua_newtable(L);
  lua_pushcfunction(L, l_dns_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, kDnsKey);
  int dns = lua_gettop(L);
  // The resolver's wake-up is made now, so it is there from the start like
  // the module itself (programs that count their fds see it come with
  // require'sock', not with the first lookup). Its threads start on demand.
  // If it cannot be made now, the first lookup tries again.
  ensure_resolver(d);

  luaL_newmetatable(L, kLookupMeta);
  lua_pushcfunction(L, l_lookup_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_lookup_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);

  lua_pushcfunction(L, l_lookup);
  lua_setfield(L, module, "_lookup");
  lua_pushlightuserdata(L, &lookup_marker);
  lua_setfield(L, module, "_lookup_marker");
  lua_pushvalue(L, dns);
  lua_pushcclosure(L, l_resolver_delay, 1);
  lua_setfield(L, module, "_resolver_delay");
  lua_pushvalue(L, dns);
  lua_pushcclosure(L, l_resolver_stats, 1);
  lua_setfield(L, module, "_resolver_stats");
  lua_settop(L, module);
}
