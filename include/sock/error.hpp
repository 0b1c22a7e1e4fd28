// Normalized error names: one stable, platform-independent name per failure so
// Lua code can compare `err == 'connection_refused'` on every backend.
#pragma once

namespace sock {

// Codes of our own, beyond any errno value, for conditions the OS has no
// errno for. They travel in the same `-code` slot as errno values do.
enum : int {
  ERR_CLOSED = 100001,  // the socket was closed (possibly while we waited)
  ERR_EOF = 100002,     // the peer closed before the requested amount arrived
  ERR_BUSY = 100003,    // another thread already waits for the same direction
  ERR_TOO_LONG = 100004 // a line or delimited read exceeded its maximum
};

// The normalized name for an errno value or one of the codes above
// ("connection_refused", "timeout", "closed", ...); nullptr when the value
// has no stable name.
const char* error_name(int code);

// The normalized name, or else the OS's own message for the code. Never null.
const char* error_message(int code);

}  // namespace sock
