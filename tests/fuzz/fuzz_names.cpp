// Name <-> number maps: families, socket types, protocols, getaddrinfo flags,
// socket option names (canonical, bare, any case, aliases), error names.
//  - a name that is found maps back to itself (families, types, protocols);
//  - an option lookup is consistent: the canonical name finds the same
//    option, in any letter case; an ambiguous bare name names two different
//    options and finds none;
//  - error_message is never null, for any code.
#include <netdb.h>

#include <cctype>

#include "fuzz_input.hpp"
#include "sock/address.hpp"
#include "sock/error.hpp"
#include "sock/options.hpp"

static std::string upper(std::string_view s) {
  std::string u(s);
  for (char& c : u) c = char(std::toupper((unsigned char)c));
  return u;
}

static void check_option_lookup(std::string_view name) {
  sock::OptionLookup found = sock::lookup_option(name);
  FUZZ_CHECK(found.info == sock::find_option(name));
  if (found.info) {
    FUZZ_CHECK(found.candidates[0] == nullptr);
    FUZZ_CHECK(sock::find_option(found.info->name) == found.info);
    FUZZ_CHECK(sock::find_option(upper(found.info->name)) == found.info);
    FUZZ_CHECK(sock::find_option(upper(name)) == found.info);
    FUZZ_CHECK(found.info->readable || found.info->writable);
  } else if (found.candidates[0]) {
    FUZZ_CHECK(found.candidates[1] && found.candidates[0] != found.candidates[1]);
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  int code = in.value<int32_t>();
  std::string_view name = in.rest();

  int af = sock::family_from_name(name);
  if (af >= 0) FUZZ_CHECK(name == sock::family_name(af));
  int type = sock::socktype_from_name(name);
  if (type >= 0) FUZZ_CHECK(name == sock::socktype_name(type));
  int proto = sock::protocol_from_name(name);
  if (proto >= 0) FUZZ_CHECK(name == sock::protocol_name(proto));
  int flag = sock::addr_flag_from_name(name);
  if (flag >= 0) {
    FUZZ_CHECK(flag != 0 && (flag & (flag - 1)) == 0);  // exactly one flag
  }
  check_option_lookup(name);

  // Numbers to names, for any number.
  (void)sock::family_name(code);
  (void)sock::socktype_name(code);
  (void)sock::protocol_name(code);
  (void)sock::default_protocol(code);
  const char* msg = sock::error_message(code);
  FUZZ_CHECK(msg != nullptr);
  if (const char* n = sock::error_name(code)) FUZZ_CHECK(std::strcmp(n, msg) == 0);
  if (code != 0) {
    const char* r = sock::resolve_error_message(code, code);
    FUZZ_CHECK(r && *r);
  }

  // Every canonical option name finds its own entry (cheap; once per input
  // is enough to keep the table honest as it grows).
  size_t count = 0;
  const sock::OptionInfo* table = sock::option_table(&count);
  const sock::OptionInfo& option = table[unsigned(code) % count];
  FUZZ_CHECK(sock::find_option(option.name) == &option);
  return 0;
}
