#include "sock/error.hpp"
#include "sock/platform.hpp"  // the errno names Windows lacks

#include <cerrno>
#include <cstring>

namespace sock {

const char* error_name(int code) {
  switch (code) {
    case ERR_CLOSED: return "closed";
    case ERR_EOF: return "eof";
    case ERR_BUSY: return "busy";
    case ERR_TOO_LONG: return "too_long";
    case ETIMEDOUT: return "timeout";
    case EACCES:
    case EPERM: return "access_denied";
    case EADDRINUSE: return "address_already_in_use";
    case EADDRNOTAVAIL: return "address_not_available";
    case EAFNOSUPPORT: return "address_family_not_supported";
    case ECONNABORTED: return "connection_aborted";
    case ECONNRESET: return "connection_reset";
    case ECONNREFUSED: return "connection_refused";
    case ENOTCONN: return "not_connected";
    case EISCONN: return "already_connected";
    case EHOSTUNREACH: return "host_unreachable";
    case ENETUNREACH: return "network_unreachable";
    case ENETDOWN: return "network_down";
    case EHOSTDOWN: return "host_down";
    case EPIPE: return "broken_pipe";
    case EMSGSIZE: return "message_too_long";
    case EMFILE:
    case ENFILE: return "too_many_open_files";
    case ENOBUFS:
    case ENOMEM: return "out_of_memory";
    case EINVAL: return "invalid_argument";
    case EBADF: return "closed";
    case ENOTSOCK: return "not_a_socket";
    case EPROTONOSUPPORT: return "protocol_not_supported";
    case EPROTOTYPE: return "wrong_protocol_type";
    case ENOPROTOOPT: return "option_not_supported";
    case EOPNOTSUPP: return "operation_not_supported";
    case EALREADY: return "already_in_progress";
    case EINPROGRESS: return "in_progress";
    case ENOENT: return "not_found";
    case ENOTDIR: return "not_a_directory";
    case ECANCELED: return "canceled";
    case EISDIR: return "is_a_directory";
    case ENAMETOOLONG: return "name_too_long";
    case EDESTADDRREQ: return "destination_address_required";
    case ENODEV: return "no_such_device";
    case ESHUTDOWN: return "shutdown";
    case EOVERFLOW: return "value_too_large";
    default: return nullptr;
  }
}

const char* error_message(int code) {
  if (const char* name = error_name(code)) return name;
  return std::strerror(code);
}

}  // namespace sock
