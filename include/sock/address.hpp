// Addresses: the names Lua code uses for families, socket types, protocols and
// getaddrinfo flags; a socket address value type; an owner for address lists;
// name resolution; and text <-> binary IP conversion. No Lua in here.
#pragma once

#include "sock/platform.hpp"  // sockaddr, addrinfo, socklen_t

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace sock {

// ---- name <-> number maps -------------------------------------------------
// Every *_from_name returns -1 for a name it does not know; every *_name
// returns nullptr for a number it has no name for.

int family_from_name(std::string_view name);  // 'inet' 'inet6' 'unix'
const char* family_name(int af);

int socktype_from_name(std::string_view name);  // 'tcp' 'udp' 'raw'
const char* socktype_name(int socktype);

// 'ip' 'ipv6' 'tcp' 'udp' 'raw' 'icmp' 'igmp' 'icmpv6'
int protocol_from_name(std::string_view name);
const char* protocol_name(int protocol);

// The protocol a socket type implies when none is given: tcp -> IPPROTO_TCP,
// udp -> IPPROTO_UDP, raw -> IPPROTO_RAW, anything else -> 0.
int default_protocol(int socktype);

// getaddrinfo flags by name: passive, cannonname (luapower's spelling) and
// canonname, numerichost, numericserv, all, v4mapped, addrconfig.
int addr_flag_from_name(std::string_view name);

// ---- socket address value ---------------------------------------------------

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;

  SockAddr() = default;
  // Copies at most sizeof(storage) bytes.
  SockAddr(const sockaddr* sa, socklen_t salen);

  int family() const;  // AF_UNSPEC when empty
  // The port for inet/inet6 addresses, -1 for any other family.
  int port() const;
  // Canonical inet_ntop text of the IP ("127.0.0.1", "::1"); false when the
  // address is not inet/inet6 or `cap` is too small.
  bool ip_string(char* out, size_t cap) const;
  // "ip:port", "[ip6]:port" (with "%scope" for scoped IPv6 addresses), the path
  // for a unix address ("@name" for a Linux abstract name, "" for an unnamed
  // one), "" when empty.
  std::string to_string() const;
  // For unix addresses: the path, or the abstract name with its leading '\0'
  // shown as '@'. Empty for other families.
  std::string unix_path() const;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
};

bool operator==(const SockAddr& a, const SockAddr& b);
inline bool operator!=(const SockAddr& a, const SockAddr& b) { return !(a == b); }

// An inet or inet6 address from IP text (the family follows the text; a
// "%scope" suffix is accepted for IPv6) and a port. Returns 0 or EINVAL.
int sockaddr_from_ip(std::string_view ip, int port, SockAddr& out);

// A unix address from a path. A leading '\0' or '@' makes it a Linux abstract
// name; an empty path makes an unnamed address (binding it autobinds). Returns
// 0, ENAMETOOLONG when it does not fit sun_path, or EINVAL for a pathname with
// an embedded '\0'.
int sockaddr_from_unix_path(std::string_view path, SockAddr& out);

// ---- address lists ----------------------------------------------------------

// Owns a linked list of addrinfo entries: either what getaddrinfo returned or
// a single entry we built ourselves (unix paths, an address already in hand).
class AddrList {
 public:
  AddrList() = default;
  ~AddrList();
  AddrList(AddrList&& other) noexcept;
  AddrList& operator=(AddrList&& other) noexcept;
  AddrList(const AddrList&) = delete;
  AddrList& operator=(const AddrList&) = delete;

  const addrinfo* first() const;
  bool empty() const { return first() == nullptr; }
  void reset();

  // Takes ownership of a getaddrinfo() result.
  static AddrList adopt(addrinfo* from_getaddrinfo);
  // A one-entry list holding a copy of `sa`.
  static AddrList single(const SockAddr& sa, int socktype, int protocol);

 private:
  struct OwnNode {
    addrinfo ai{};
    sockaddr_storage storage{};
  };
  addrinfo* system_ = nullptr;     // freed with freeaddrinfo
  std::unique_ptr<OwnNode> own_;  // an entry we built
};

// ---- resolution ---------------------------------------------------------------

// Resolves host and port (or service name) into `out`. Returns 0 or an EAI_*
// code (EAI_SYSTEM leaves the cause in errno).
//  - host nullptr or "*" means all interfaces: "0.0.0.0" for inet and for an
//    unspecified family, "::" for inet6.
//  - family AF_UNIX: host is the path, port is ignored; one entry is built.
//  - protocol 0 takes default_protocol(socktype).
//  - a numeric host or port is resolved without any lookup, so it never blocks.
//  - raw sockets have no ports: the port is ignored.
//  - a lookup that failed because the process ran out of fds returns
//    EAI_SYSTEM with EMFILE/ENFILE, not the EAI_NONAME glibc says then.
int resolve(const char* host, const char* port_or_service, int socktype, int family,
            int protocol, int flags, AddrList& out);

// True when resolve() would not need DNS or any other lookup that can block:
// nullptr, "*", an IP literal, or any host for AF_UNIX.
bool host_is_numeric(const char* host, int family);

// A normalized name for an EAI_* code ("host_not_found", "try_again",
// "service_not_found", "address_family_not_supported", ...), the errno name
// for EAI_SYSTEM, gai_strerror's text otherwise.
const char* resolve_error_message(int eai, int sys_errno);
const char* resolve_error_message(int eai);  // uses the current errno

// ---- IP text <-> binary -----------------------------------------------------

// `out` receives 4 (inet) or 16 (inet6) bytes in network order. IPv4 text must
// be a strict dotted quad (see is_ipv4).
bool inet_pton(int af, std::string_view text, unsigned char out[16], size_t* outlen);
// Canonical text for 4 or 16 bytes; false for another family or a small `cap`.
bool inet_ntop(int af, const void* bin, char* out, size_t cap);
// Exactly four decimal parts of 0-255 without leading zeros ("01.2.3.4" is
// rejected: inet_aton would read it as octal).
bool is_ipv4(std::string_view text);
// An IPv6 address as inet_pton accepts it, without a "%scope" suffix.
bool is_ipv6(std::string_view text);

// Interface names <-> indexes. 0 / false when there is no such interface
// (errno says why).
unsigned interface_index(const char* name);
bool interface_name(unsigned index, char* out, size_t cap);

}  // namespace sock
