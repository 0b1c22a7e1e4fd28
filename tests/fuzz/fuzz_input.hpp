// Helpers shared by the fuzz targets: a reader that takes typed values off
// the fuzzer's input, and a check that aborts (so libFuzzer records the
// input) whatever NDEBUG says.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : p_(data), left_(size) {}

  size_t left() const { return left_; }

  uint8_t byte() {
    if (!left_) return 0;
    left_--;
    return *p_++;
  }

  template <typename T>
  T value() {  // the next sizeof(T) bytes, zero-padded at the end of the input
    unsigned char raw[sizeof(T)] = {};
    size_t n = left_ < sizeof(T) ? left_ : sizeof(T);
    std::memcpy(raw, p_, n);
    p_ += n;
    left_ -= n;
    T v;
    std::memcpy(&v, raw, sizeof v);
    return v;
  }

  // A string whose length is the next byte (at most what is left).
  std::string_view short_string() {
    size_t n = byte();
    return take(n);
  }

  // Everything that is left.
  std::string_view rest() { return take(left_); }

  std::string_view take(size_t n) {
    if (n > left_) n = left_;
    std::string_view s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    left_ -= n;
    return s;
  }

 private:
  const uint8_t* p_;
  size_t left_;
};

inline bool has_nul(std::string_view s) { return std::memchr(s.data(), '\0', s.size()) != nullptr; }
