// IP text <-> binary: sock::inet_pton / inet_ntop / is_ipv4 / is_ipv6.
//  - is_ipv4 and inet_pton(AF_INET) agree with each other and with the C
//    library's inet_pton, which is also strict (no leading zeros, exactly four
//    parts); the canonical text of a strict dotted quad is the text itself.
//  - is_ipv6 and inet_pton(AF_INET6) agree with the C library.
//  - text -> binary -> text -> binary gives the same bytes, for both families.
//  - inet_ntop of any 4 or 16 bytes gives text that parses back to them, and
//    never writes past `cap`, whatever cap is.
#include <arpa/inet.h>
#include <sys/socket.h>

#include <memory>

#include "fuzz_input.hpp"
#include "sock/address.hpp"

static void check_text(std::string_view text) {
  unsigned char bin[16];
  size_t len = 0;
  std::string z(text);  // NUL-terminated, for the C library

  // IPv4.
  bool v4 = sock::is_ipv4(text);
  bool v4_parsed = sock::inet_pton(AF_INET, text, bin, &len);
  FUZZ_CHECK(v4 == v4_parsed);
  if (!has_nul(text)) {
    unsigned char ref[4];
    bool libc = ::inet_pton(AF_INET, z.c_str(), ref) == 1;
    FUZZ_CHECK(libc == v4);
    if (v4) FUZZ_CHECK(std::memcmp(ref, bin, 4) == 0);
  }
  if (v4) {
    FUZZ_CHECK(len == 4);
    char back[INET_ADDRSTRLEN];
    FUZZ_CHECK(sock::inet_ntop(AF_INET, bin, back, sizeof back));
    FUZZ_CHECK(text == back);
  }

  // IPv6.
  bool v6 = sock::is_ipv6(text);
  bool v6_parsed = sock::inet_pton(AF_INET6, text, bin, &len);
  FUZZ_CHECK(v6 == v6_parsed);
  if (!has_nul(text)) {
    unsigned char ref[16];
    bool libc = ::inet_pton(AF_INET6, z.c_str(), ref) == 1;
    FUZZ_CHECK(libc == v6);
    if (v6) FUZZ_CHECK(std::memcmp(ref, bin, 16) == 0);
  }
  if (v6) {
    FUZZ_CHECK(len == 16);
    char back[INET6_ADDRSTRLEN];
    FUZZ_CHECK(sock::inet_ntop(AF_INET6, bin, back, sizeof back));
    unsigned char again[16];
    size_t again_len = 0;
    FUZZ_CHECK(sock::inet_pton(AF_INET6, back, again, &again_len));
    FUZZ_CHECK(again_len == 16 && std::memcmp(again, bin, 16) == 0);
    FUZZ_CHECK(sock::is_ipv6(back));
  }
  // No text is both.
  FUZZ_CHECK(!(v4 && v6));

  // Other families are refused.
  FUZZ_CHECK(!sock::inet_pton(AF_UNIX, text, bin, &len));
  FUZZ_CHECK(!sock::inet_pton(AF_UNSPEC, text, bin, &len));
}

static void check_binary(FuzzInput& in) {
  int af = in.byte() & 1 ? AF_INET6 : AF_INET;
  size_t cap = in.byte() % 64;
  unsigned char bin[16] = {};
  std::string_view raw = in.take(16);
  std::memcpy(bin, raw.data(), raw.size());
  // Exactly `cap` bytes, so that ASan sees any write past them.
  std::unique_ptr<char[]> out(new char[cap ? cap : 1]);
  bool ok = sock::inet_ntop(af, bin, out.get(), cap);
  if (!ok) return;
  size_t n = strnlen(out.get(), cap);
  FUZZ_CHECK(n < cap);
  unsigned char back[16];
  size_t len = 0;
  FUZZ_CHECK(sock::inet_pton(af, std::string_view(out.get(), n), back, &len));
  FUZZ_CHECK(len == (af == AF_INET ? 4u : 16u));
  FUZZ_CHECK(std::memcmp(back, bin, len) == 0);
  // A family that is neither is refused.
  FUZZ_CHECK(!sock::inet_ntop(AF_UNIX, bin, out.get(), cap));
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  if (in.byte() & 1) {
    check_binary(in);
  } else {
    check_text(in.rest());
  }
  return 0;
}
