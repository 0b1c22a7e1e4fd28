// The resolver: lookups on worker threads, finished jobs announced through
// an eventfd (a loopback socket pair's read end on Windows). Only loopback
// names: 'localhost' comes from /etc/hosts.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>
#include <memory>
#include <set>

#include "sock/resolver.hpp"
#include "test_net.hpp"

using namespace sock;

namespace {

std::unique_ptr<ResolveJob> make_job(const char* host, const char* service, int flags = 0) {
  auto job = std::make_unique<ResolveJob>();
  job->host = host;
  if (service) {
    job->service = service;
    job->has_service = true;
  }
  job->socktype = SOCK_STREAM;
  job->family = AF_INET;
  job->flags = flags;
  return job;
}

// Wait (at most `seconds`) for the eventfd, then take one finished job.
std::unique_ptr<ResolveJob> wait_one(Resolver& r, double seconds = 5) {
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  for (;;) {
    if (auto job = r.take()) return job;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return nullptr;
    test_net::wait_readable(r.fd(), (int)left.count());
    r.clear_signal();
  }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

bool fd_readable(socket_t fd) { return test_net::is_readable_now(fd); }

}  // namespace

TEST_CASE("resolver looks up a host name off the calling thread", "[resolver]") {
  Resolver r;
  REQUIRE(r.open() == 0);
  REQUIRE(r.fd() != invalid_socket);
  auto job = make_job("localhost", "80");
  int tag = 7;
  job->user = &tag;
  REQUIRE(r.submit(job) == 0);
  REQUIRE(!job);  // the resolver owns it now
  REQUIRE(r.pending() == 1);
  auto done = wait_one(r);
  REQUIRE(done);
  CHECK(done->user == &tag);
  REQUIRE(done->eai == 0);
  const addrinfo* ai = done->result.first();
  REQUIRE(ai);
  REQUIRE(ai->ai_family == AF_INET);
  auto* sin = reinterpret_cast<const sockaddr_in*>(ai->ai_addr);
  CHECK(ntohs(sin->sin_port) == 80);
  CHECK(ntohl(sin->sin_addr.s_addr) == 0x7f000001);
  CHECK(r.pending() == 0);
  CHECK(r.threads() == 1);
}

TEST_CASE("resolver reports failures with their EAI code", "[resolver]") {
  Resolver r;
  REQUIRE(r.open() == 0);
  auto a = make_job("localhost", nullptr, AI_NUMERICHOST);  // a name where a number must be
  auto b = make_job("127.0.0.1", "no-such-service-xyz");
  REQUIRE(r.submit(a) == 0);
  REQUIRE(r.submit(b) == 0);
  std::set<int> codes;
  for (int i = 0; i < 2; i++) {
    auto done = wait_one(r);
    REQUIRE(done);
    CHECK(done->eai != 0);
    CHECK(done->result.empty());
    codes.insert(done->eai);
  }
  CHECK(codes.count(EAI_NONAME) == 1);
  CHECK(codes.count(EAI_SERVICE) == 1);
}

TEST_CASE("resolver without open() refuses jobs and gives them back", "[resolver]") {
  Resolver r;
  auto job = make_job("localhost", nullptr);
  CHECK(r.submit(job) < 0);
  CHECK(job);
  CHECK(r.pending() == 0);
}

TEST_CASE("resolver runs lookups in parallel up to its thread limit", "[resolver]") {
  Resolver r(3);
  REQUIRE(r.open() == 0);
  r.set_delay(0.2);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 6; i++) {
    auto job = make_job("localhost", "1");
    REQUIRE(r.submit(job) == 0);
  }
  CHECK(r.threads() <= 3);
  for (int i = 0; i < 6; i++) REQUIRE(wait_one(r));
  double took = seconds_since(t0);
  CHECK(took >= 0.4);  // two rounds of three
  CHECK(took < 1.1);   // not six rounds of one
  CHECK(r.threads() == 3);
  CHECK(r.pending() == 0);
}

TEST_CASE("resolver cancels queued, running and finished jobs", "[resolver]") {
  Resolver r(1);
  REQUIRE(r.open() == 0);
  r.set_delay(0.3);
  auto a = make_job("localhost", nullptr);
  auto b = make_job("localhost", nullptr);
  ResolveJob* pa = a.get();
  ResolveJob* pb = b.get();
  REQUIRE(r.submit(a) == 0);
  REQUIRE(r.submit(b) == 0);
  CHECK(r.pending() == 2);
  r.cancel(pb);  // still queued behind a: freed now
  CHECK(r.pending() == 1);
  r.cancel(pa);  // running (or about to): freed by its worker
  CHECK(r.pending() == 0);
  r.set_delay(0);
  auto c = make_job("localhost", nullptr);
  ResolveJob* pc = c.get();
  REQUIRE(r.submit(c) == 0);
  // c finishes after a's delay; the canceled a is never reported.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (r.finished() == 0 && std::chrono::steady_clock::now() < until) {
    test_net::wait_readable(r.fd(), 100);
  }
  REQUIRE(r.finished() == 1);
  r.cancel(pc);  // finished but not taken: dropped
  CHECK(r.finished() == 0);
  CHECK(r.pending() == 0);
  CHECK(!r.take());
}

TEST_CASE("resolver signal and clear_signal drive the eventfd", "[resolver]") {
  Resolver r;
  REQUIRE(r.open() == 0);
  CHECK(!fd_readable(r.fd()));
  r.signal();
  CHECK(fd_readable(r.fd()));
  r.clear_signal();
  CHECK(!fd_readable(r.fd()));
  r.clear_signal();  // nothing to clear: harmless
}

TEST_CASE("destroying a resolver with lookups in progress does not wait out a test delay", "[resolver]") {
  auto t0 = std::chrono::steady_clock::now();
  {
    Resolver r(2);
    REQUIRE(r.open() == 0);
    r.set_delay(30);
    for (int i = 0; i < 4; i++) {
      auto job = make_job("localhost", nullptr);
      REQUIRE(r.submit(job) == 0);
    }
  }
  CHECK(seconds_since(t0) < 5);
}

TEST_CASE("destroying a resolver does not wait for a lookup that cannot be interrupted", "[resolver]") {
  // The stall stands in for a getaddrinfo waiting on a slow DNS server.
  auto t0 = std::chrono::steady_clock::now();
  socket_t efd;
  {
    Resolver r(1);
    REQUIRE(r.open() == 0);
    efd = r.fd();
    r.set_stall(1.5);
    auto job = make_job("localhost", nullptr);
    REQUIRE(r.submit(job) == 0);
    while (r.running() == 0 && seconds_since(t0) < 5) test_net::pause_ms(10);
    REQUIRE(r.running() == 1);  // the worker is in its lookup
  }
  CHECK(seconds_since(t0) < 1.0);
  // The worker still holds the eventfd, so its number is not reused under
  // it; once its lookup ends, it closes it.
  CHECK(test_net::is_open_descriptor(efd));
  while (test_net::is_open_descriptor(efd) && seconds_since(t0) < 10) test_net::pause_ms(20);
  CHECK_FALSE(test_net::is_open_descriptor(efd));
}

TEST_CASE("the test delay comes from SOCK_TEST_RESOLVER_DELAY", "[resolver]") {
  test_net::set_env("SOCK_TEST_RESOLVER_DELAY", "0.25");
  {
    Resolver r;
    CHECK(r.delay() == Approx(0.25));
  }
  test_net::set_env("SOCK_TEST_RESOLVER_DELAY", "nonsense");
  {
    Resolver r;
    CHECK(r.delay() == 0);
  }
  test_net::unset_env("SOCK_TEST_RESOLVER_DELAY");
  Resolver r;
  CHECK(r.delay() == 0);
  r.set_delay(-1);
  CHECK(r.delay() == 0);
}
