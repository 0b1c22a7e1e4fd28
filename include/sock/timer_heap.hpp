// A binary min-heap of timers keyed by deadline. Timers are intrusive: the
// owner embeds a Timer and the heap stores pointers, so arming a timer never
// allocates once the heap has grown, and removal is O(log n) through the
// index each timer keeps of its own slot.
#pragma once

#include <cstddef>
#include <vector>

namespace sock {

struct Timer {
  static constexpr size_t not_armed = (size_t)-1;
  double when = 0;                       // deadline, monotonic seconds
  size_t heap_index = not_armed;         // slot in the heap, or not_armed
  void (*on_fire)(Timer*) = nullptr;     // called by the loop when `when` passes
  void* owner = nullptr;                 // whatever the callback needs

  bool armed() const { return heap_index != not_armed; }
};

class TimerHeap {
 public:
  void push(Timer* t);        // t must not be armed
  bool remove(Timer* t);      // false if t was not armed
  Timer* top() const { return heap_.empty() ? nullptr : heap_.front(); }
  Timer* pop();               // removes and returns the earliest, or nullptr
  size_t size() const { return heap_.size(); }
  bool empty() const { return heap_.empty(); }

 private:
  void sift_up(size_t i);
  void sift_down(size_t i);
  void place(size_t i, Timer* t) {
    heap_[i] = t;
    t->heap_index = i;
  }
  std::vector<Timer*> heap_;
};

}  // namespace sock
