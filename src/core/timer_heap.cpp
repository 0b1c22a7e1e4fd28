#include "sock/timer_heap.hpp"

namespace sock {

void TimerHeap::push(Timer* t) {
  heap_.push_back(t);
  t->heap_index = heap_.size() - 1;
  sift_up(heap_.size() - 1);
}

Timer* TimerHeap::pop() {
  if (heap_.empty()) return nullptr;
  Timer* t = heap_.front();
  remove(t);
  return t;
}

bool TimerHeap::remove(Timer* t) {
  size_t i = t->heap_index;
  if (i == Timer::not_armed || i >= heap_.size() || heap_[i] != t) return false;
  Timer* last = heap_.back();
  heap_.pop_back();
  t->heap_index = Timer::not_armed;
  if (last != t) {
    place(i, last);
    // The moved timer may belong above or below its new slot.
    sift_up(i);
    sift_down(last->heap_index);
  }
  return true;
}

void TimerHeap::sift_up(size_t i) {
  Timer* t = heap_[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!(t->when < heap_[parent]->when)) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, t);
}

void TimerHeap::sift_down(size_t i) {
  Timer* t = heap_[i];
  size_t n = heap_.size();
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && heap_[child + 1]->when < heap_[child]->when) child++;
    if (!(heap_[child]->when < t->when)) break;
    place(i, heap_[child]);
    i = child;
  }
  place(i, t);
}

}  // namespace sock
