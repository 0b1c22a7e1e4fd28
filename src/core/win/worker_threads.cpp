// worker_threads.hpp on Windows: GetModuleHandleEx pins the DLL; there are no
// signals to block.
#include "../worker_threads.hpp"

#include <windows.h>

namespace sock {
namespace detail {

void keep_code_loaded() {
  static const bool pinned = [] {
    HMODULE self = nullptr;
    return GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_PIN,
                              reinterpret_cast<LPCWSTR>(&keep_code_loaded), &self) != 0;
  }();
  (void)pinned;
}

SignalsBlocked::SignalsBlocked() {}
SignalsBlocked::~SignalsBlocked() {}

}  // namespace detail
}  // namespace sock
