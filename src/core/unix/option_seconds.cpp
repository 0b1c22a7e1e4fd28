// K::Seconds (SO_RCVTIMEO, SO_SNDTIMEO) on every POSIX system: a struct
// timeval (Windows has a DWORD of milliseconds: win/options_win.cpp).
#include "../options_os.hpp"

#include <sys/time.h>

namespace sock {

int set_seconds_option(socket_t fd, const OptionInfo& option, double seconds) {
  timeval tv;
  tv.tv_sec = time_t(seconds);
  tv.tv_usec = suseconds_t((seconds - double(tv.tv_sec)) * 1e6);
  return set_raw_option(fd, option, &tv, sizeof tv);
}

int get_seconds_option(socket_t fd, const OptionInfo& option, double* seconds) {
  timeval tv{};
  socklen_t len = sizeof tv;
  if (int err = get_raw_option(fd, option, &tv, &len)) return err;
  *seconds = double(tv.tv_sec) + double(tv.tv_usec) / 1e6;
  return 0;
}

}  // namespace sock
