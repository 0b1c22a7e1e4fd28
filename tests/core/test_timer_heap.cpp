#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <vector>

#include "sock/timer_heap.hpp"

using sock::Timer;
using sock::TimerHeap;

TEST_CASE("timer heap pops in deadline order", "[timer]") {
  std::vector<Timer> timers(1000);
  std::mt19937 rng(42);
  TimerHeap heap;
  for (auto& t : timers) {
    t.when = std::uniform_real_distribution<double>(0, 100)(rng);
    heap.push(&t);
  }
  REQUIRE(heap.size() == 1000);
  double last = -1;
  while (Timer* t = heap.pop()) {
    REQUIRE(t->when >= last);
    REQUIRE_FALSE(t->armed());
    last = t->when;
  }
  REQUIRE(heap.empty());
}

TEST_CASE("timer heap removes from the middle and keeps order", "[timer]") {
  std::vector<Timer> timers(500);
  TimerHeap heap;
  for (size_t i = 0; i < timers.size(); i++) {
    timers[i].when = (double)((i * 7919) % 500);
    heap.push(&timers[i]);
  }
  for (size_t i = 0; i < timers.size(); i += 3) REQUIRE(heap.remove(&timers[i]));
  REQUIRE_FALSE(heap.remove(&timers[0]));  // already out
  std::vector<double> popped;
  while (Timer* t = heap.pop()) popped.push_back(t->when);
  REQUIRE(std::is_sorted(popped.begin(), popped.end()));
  REQUIRE(popped.size() == timers.size() - (timers.size() + 2) / 3);
}

TEST_CASE("an unarmed timer is not removed", "[timer]") {
  TimerHeap heap;
  Timer a, b;
  a.when = 1;
  heap.push(&a);
  REQUIRE_FALSE(heap.remove(&b));
  REQUIRE(heap.top() == &a);
}
