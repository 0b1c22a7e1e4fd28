#include "sock/address.hpp"

#include "sock/error.hpp"
#include "sock/platform.hpp"


#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace sock {

namespace {

struct NamedValue {
  const char* name;
  int value;
};

constexpr NamedValue kFamilies[] = {
    {"inet", AF_INET}, {"inet6", AF_INET6}, {"unix", AF_UNIX}};

constexpr NamedValue kSockTypes[] = {
    {"tcp", SOCK_STREAM}, {"udp", SOCK_DGRAM}, {"raw", SOCK_RAW}};

constexpr NamedValue kProtocols[] = {
    {"ip", IPPROTO_IP},     {"ipv6", IPPROTO_IPV6}, {"tcp", IPPROTO_TCP},
    {"udp", IPPROTO_UDP},   {"raw", IPPROTO_RAW},   {"icmp", IPPROTO_ICMP},
    {"igmp", IPPROTO_IGMP}, {"icmpv6", IPPROTO_ICMPV6}};

// "cannonname" is how luapower spells it; the POSIX spelling works too.
constexpr NamedValue kAddrFlags[] = {
    {"passive", AI_PASSIVE},         {"cannonname", AI_CANONNAME},
    {"canonname", AI_CANONNAME},     {"numerichost", AI_NUMERICHOST},
    {"numericserv", AI_NUMERICSERV}, {"all", AI_ALL},
    {"v4mapped", AI_V4MAPPED},       {"addrconfig", AI_ADDRCONFIG}};

template <size_t N>
int lookup_value(const NamedValue (&table)[N], std::string_view name) {
  for (const auto& entry : table)
    if (name == entry.name) return entry.value;
  return -1;
}

template <size_t N>
const char* lookup_name(const NamedValue (&table)[N], int value) {
  for (const auto& entry : table)
    if (value == entry.value) return entry.name;
  return nullptr;
}

constexpr size_t kSunPathOffset = offsetof(sockaddr_un, sun_path);
constexpr size_t kSunPathSize = sizeof(sockaddr_un{}.sun_path);

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// A NUL-terminated copy of short text, for the C APIs; false when it does not
// fit or carries an embedded NUL (which the C APIs would silently cut at).
bool copy_cstring(std::string_view text, char* out, size_t cap) {
  if (text.size() >= cap || std::memchr(text.data(), '\0', text.size())) return false;
  std::memcpy(out, text.data(), text.size());
  out[text.size()] = '\0';
  return true;
}

}  // namespace

int family_from_name(std::string_view name) { return lookup_value(kFamilies, name); }
const char* family_name(int af) { return lookup_name(kFamilies, af); }
int socktype_from_name(std::string_view name) { return lookup_value(kSockTypes, name); }
const char* socktype_name(int socktype) { return lookup_name(kSockTypes, socktype); }
int protocol_from_name(std::string_view name) { return lookup_value(kProtocols, name); }
const char* protocol_name(int protocol) { return lookup_name(kProtocols, protocol); }
int addr_flag_from_name(std::string_view name) { return lookup_value(kAddrFlags, name); }

int default_protocol(int socktype) {
  switch (socktype) {
    case SOCK_STREAM: return IPPROTO_TCP;
    case SOCK_DGRAM: return IPPROTO_UDP;
    case SOCK_RAW: return IPPROTO_RAW;
    default: return 0;
  }
}

// ---- SockAddr -----------------------------------------------------------------

SockAddr::SockAddr(const sockaddr* sa, socklen_t salen) {
  if (!sa) return;
  len = (size_t)salen > sizeof(storage) ? socklen_t(sizeof(storage)) : salen;
  std::memcpy(&storage, sa, len);
}

int SockAddr::family() const { return len ? storage.ss_family : AF_UNSPEC; }

int SockAddr::port() const {
  switch (family()) {
    case AF_INET: return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
    case AF_INET6: return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
    default: return -1;
  }
}

bool SockAddr::ip_string(char* out, size_t cap) const {
  switch (family()) {
    case AF_INET: {
      const auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
      return sock::inet_ntop(AF_INET, &in->sin_addr, out, cap);
    }
    case AF_INET6: {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
      return sock::inet_ntop(AF_INET6, &in6->sin6_addr, out, cap);
    }
    default: return false;
  }
}

std::string SockAddr::unix_path() const {
  if (family() != AF_UNIX || (size_t)len <= kSunPathOffset) return {};
  const auto* un = reinterpret_cast<const sockaddr_un*>(&storage);
  size_t n = len - kSunPathOffset;
  if (n > kSunPathSize) n = kSunPathSize;
  if (un->sun_path[0] == '\0') return "@" + std::string(un->sun_path + 1, n - 1);
  // Pathnames from the kernel may or may not count the terminating NUL.
  return std::string(un->sun_path, strnlen(un->sun_path, n));
}

std::string SockAddr::to_string() const {
  char ip[INET6_ADDRSTRLEN];
  char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 16];
  switch (family()) {
    case AF_INET:
      if (!ip_string(ip, sizeof ip)) return {};
      std::snprintf(text, sizeof text, "%s:%d", ip, port());
      return text;
    case AF_INET6: {
      if (!ip_string(ip, sizeof ip)) return {};
      // A link-local address means nothing without its interface, so the
      // scope is kept in the text (the form getaddrinfo reads back).
      unsigned scope = reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_scope_id;
      char zone[IF_NAMESIZE + 12] = "";
      if (scope) {
        char ifname[IF_NAMESIZE];
        if (if_indextoname(scope, ifname))
          std::snprintf(zone, sizeof zone, "%%%s", ifname);
        else
          std::snprintf(zone, sizeof zone, "%%%u", scope);
      }
      std::snprintf(text, sizeof text, "[%s%s]:%d", ip, zone, port());
      return text;
    }
    case AF_UNIX: return unix_path();
    default: return {};
  }
}

bool operator==(const SockAddr& a, const SockAddr& b) {
  return a.len == b.len && std::memcmp(&a.storage, &b.storage, a.len) == 0;
}

int sockaddr_from_ip(std::string_view ip, int port, SockAddr& out) {
  if (port < 0 || port > 65535) return EINVAL;
  out = SockAddr();
  unsigned char bin[16];
  size_t binlen = 0;
  if (inet_pton(AF_INET, ip, bin, &binlen)) {
    auto* in = reinterpret_cast<sockaddr_in*>(&out.storage);
    in->sin_family = AF_INET;
    in->sin_port = htons(uint16_t(port));
    std::memcpy(&in->sin_addr, bin, 4);
    out.len = sizeof(sockaddr_in);
    return 0;
  }
  std::string_view zone;
  size_t percent = ip.find('%');
  if (percent != std::string_view::npos) {
    zone = ip.substr(percent + 1);
    ip = ip.substr(0, percent);
  }
  if (!inet_pton(AF_INET6, ip, bin, &binlen)) return EINVAL;
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(uint16_t(port));
  std::memcpy(&in6->sin6_addr, bin, 16);
  if (percent != std::string_view::npos) {
    char zonebuf[IF_NAMESIZE + 1];
    if (!copy_cstring(zone, zonebuf, sizeof zonebuf) || zone.empty()) return EINVAL;
    unsigned scope = all_digits(zone) ? unsigned(std::strtoul(zonebuf, nullptr, 10))
                                      : if_nametoindex(zonebuf);
    if (!scope) return EINVAL;
    in6->sin6_scope_id = scope;
  }
  out.len = sizeof(sockaddr_in6);
  return 0;
}

int sockaddr_from_unix_path(std::string_view path, SockAddr& out) {
  out = SockAddr();
  auto* un = reinterpret_cast<sockaddr_un*>(&out.storage);
  un->sun_family = AF_UNIX;
  if (path.empty()) {  // unnamed: the kernel picks an abstract name on bind
    out.len = socklen_t(kSunPathOffset);
    return 0;
  }
  if (path[0] == '\0' || path[0] == '@') {
    if (!has_abstract_unix_names) return EAFNOSUPPORT;  // Linux only
    std::string_view name = path.substr(1);
    if (name.size() + 1 > kSunPathSize) return ENAMETOOLONG;
    un->sun_path[0] = '\0';  // abstract names may contain any bytes
    std::memcpy(un->sun_path + 1, name.data(), name.size());
    out.len = socklen_t(kSunPathOffset + 1 + name.size());
    return 0;
  }
  if (path.size() + 1 > kSunPathSize) return ENAMETOOLONG;  // keep room for the NUL
  if (std::memchr(path.data(), '\0', path.size())) return EINVAL;
  std::memcpy(un->sun_path, path.data(), path.size());
  out.len = socklen_t(kSunPathOffset + path.size() + 1);
  return 0;
}

// ---- AddrList -----------------------------------------------------------------

AddrList::~AddrList() { reset(); }

AddrList::AddrList(AddrList&& other) noexcept
    : system_(other.system_), own_(std::move(other.own_)) {
  other.system_ = nullptr;
}

AddrList& AddrList::operator=(AddrList&& other) noexcept {
  if (this != &other) {
    reset();
    system_ = other.system_;
    own_ = std::move(other.own_);
    other.system_ = nullptr;
  }
  return *this;
}

const addrinfo* AddrList::first() const {
  if (system_) return system_;
  return own_ ? &own_->ai : nullptr;
}

void AddrList::reset() {
  if (system_) freeaddrinfo(system_);
  system_ = nullptr;
  own_.reset();
}

AddrList AddrList::adopt(addrinfo* from_getaddrinfo) {
  AddrList list;
  list.system_ = from_getaddrinfo;
  return list;
}

AddrList AddrList::single(const SockAddr& sa, int socktype, int protocol) {
  AddrList list;
  list.own_ = std::make_unique<OwnNode>();
  OwnNode& node = *list.own_;
  std::memcpy(&node.storage, &sa.storage, sa.len);
  node.ai.ai_family = sa.family();
  node.ai.ai_socktype = socktype;
  node.ai.ai_protocol = protocol;
  node.ai.ai_addrlen = sa.len;
  node.ai.ai_addr = reinterpret_cast<sockaddr*>(&node.storage);
  return list;
}

// ---- resolution -----------------------------------------------------------------

bool host_is_numeric(const char* host, int family) {
  if (family == AF_UNIX || !host) return true;
  std::string_view text(host);
  if (text == "*" || is_ipv4(text)) return true;
  return is_ipv6(text.substr(0, text.find('%')));
}

int resolve(const char* host, const char* port_or_service, int socktype, int family,
            int protocol, int flags, AddrList& out) {
  out.reset();
  if (family == AF_UNIX) {
    SockAddr sa;
    if (int err = sockaddr_from_unix_path(host ? host : "", sa)) {
      errno = err;
      return EAI_SYSTEM;
    }
    out = AddrList::single(sa, socktype, protocol);
    return 0;
  }

  if (protocol == 0) protocol = default_protocol(socktype);
  if (!host || std::strcmp(host, "*") == 0) host = family == AF_INET6 ? "::" : "0.0.0.0";

  // Raw sockets have no ports, and getaddrinfo refuses any service for them.
  const char* service = socktype == SOCK_RAW ? nullptr : port_or_service;
  if (service && !*service) service = nullptr;
  if (service && all_digits(service)) {
    // getaddrinfo would silently wrap a number past 65535.
    if (std::strlen(service) > 5 || std::atoi(service) > 65535) return EAI_SERVICE;
    flags |= AI_NUMERICSERV;
  }
  // An IP literal never needs a lookup; saying so guarantees none happens.
  if (host_is_numeric(host, family)) flags |= AI_NUMERICHOST;

  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = socktype;
  hints.ai_protocol = protocol;
  hints.ai_flags = flags;
  addrinfo* result = nullptr;
  errno = 0;
  int rc = getaddrinfo(host, service, &hints, &result);
  if (rc == EAI_SOCKTYPE && socktype && protocol) {
    // getaddrinfo knows only the usual protocol of each socket type (no
    // ICMP datagram "ping" sockets, say): resolve for the socket type alone
    // and label the entries with the protocol that was asked for.
    hints.ai_protocol = 0;
    errno = 0;
    rc = getaddrinfo(host, service, &hints, &result);
    if (rc == 0)
      for (addrinfo* ai = result; ai; ai = ai->ai_next) ai->ai_protocol = protocol;
  }
  // Out of fds, glibc cannot open /etc/hosts or a socket to the name server
  // and says the name is unknown (EAI_NONAME) or to try again (EAI_AGAIN):
  // report what went wrong instead (errno still says it).
  if (rc != 0 && (errno == EMFILE || errno == ENFILE)) return EAI_SYSTEM;
  if (rc != 0) return rc;
  out = AddrList::adopt(result);
  return 0;
}

const char* resolve_error_message(int eai, int sys_errno) {
  switch (eai) {
    case 0: return nullptr;
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
      return "host_not_found";
    case EAI_AGAIN: return "try_again";
    case EAI_SERVICE: return "service_not_found";
    case EAI_FAMILY:
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:  // e.g. an IPv4 literal asked for as inet6
#endif
      return "address_family_not_supported";
    case EAI_SOCKTYPE: return "socket_type_not_supported";
    case EAI_BADFLAGS: return "invalid_argument";
    case EAI_MEMORY: return "out_of_memory";
    case EAI_FAIL: return "resolver_failed";
    case EAI_OVERFLOW: return "name_too_long";
    case EAI_SYSTEM: return error_message(sys_errno);
    default: return gai_strerror(eai);
  }
}

const char* resolve_error_message(int eai) { return resolve_error_message(eai, errno); }

// ---- IP text <-> binary ---------------------------------------------------------

namespace {

// Parses a strict dotted quad into 4 bytes.
bool parse_ipv4(std::string_view text, unsigned char out[4]) {
  int part = 0;
  size_t i = 0;
  while (part < 4) {
    size_t start = i;
    unsigned value = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9' && i - start < 3)
      value = value * 10 + unsigned(text[i++] - '0');
    size_t digits = i - start;
    if (digits == 0 || value > 255) return false;
    if (digits > 1 && text[start] == '0') return false;  // octal to inet_aton
    out[part++] = (unsigned char)value;
    if (part < 4) {
      if (i >= text.size() || text[i] != '.') return false;
      i++;
    }
  }
  return i == text.size();
}

}  // namespace

bool is_ipv4(std::string_view text) {
  unsigned char bin[4];
  return parse_ipv4(text, bin);
}

bool is_ipv6(std::string_view text) {
  unsigned char bin[16];
  size_t len;
  return inet_pton(AF_INET6, text, bin, &len);
}

bool inet_pton(int af, std::string_view text, unsigned char out[16], size_t* outlen) {
  if (af == AF_INET) {
    if (!parse_ipv4(text, out)) return false;
    *outlen = 4;
    return true;
  }
  if (af == AF_INET6) {
    char buf[64];  // the longest valid form is 45 characters
    if (!copy_cstring(text, buf, sizeof buf)) return false;
    if (::inet_pton(AF_INET6, buf, out) != 1) return false;
    *outlen = 16;
    return true;
  }
  return false;
}

// IPv4 by hand: glibc's inet_ntop formats through sprintf (some 1,700
// instructions), and every accepted connection's address comes here.
static bool format_ipv4(const unsigned char* b, char* out, size_t cap) {
  char text[16];  // "255.255.255.255" and its NUL
  size_t n = 0;
  for (int i = 0; i < 4; i++) {
    unsigned v = b[i];
    if (v >= 100) text[n++] = char('0' + v / 100);
    if (v >= 10) text[n++] = char('0' + v / 10 % 10);
    text[n++] = char('0' + v % 10);
    text[n++] = i < 3 ? '.' : '\0';
  }
  if (n > cap) {
    errno = ENOSPC;  // (as inet_ntop)
    return false;
  }
  std::memcpy(out, text, n);
  return true;
}

bool inet_ntop(int af, const void* bin, char* out, size_t cap) {
  if (af == AF_INET) return format_ipv4(static_cast<const unsigned char*>(bin), out, cap);
  if (af != AF_INET6) return false;
  return ::inet_ntop(af, bin, out, socklen_t(cap)) != nullptr;
}

unsigned interface_index(const char* name) { return if_nametoindex(name); }

bool interface_name(unsigned index, char* out, size_t cap) {
  char buf[IF_NAMESIZE];
  if (!if_indextoname(index, buf)) return false;
  size_t n = std::strlen(buf);
  if (n >= cap) {
    errno = ENAMETOOLONG;
    return false;
  }
  std::memcpy(out, buf, n + 1);
  return true;
}

}  // namespace sock
