# Cross-compiling sock for 64-bit Windows with mingw-w64 (Debian:
# g++-mingw-w64-x86-64), and running what it builds under Wine:
#
#   scripts/windows-lua                       # the Windows interpreters
#   cmake -S . -B build-windows -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-mingw-w64.cmake \
#         -DSOCK_WINDOWS_LUA_DIR=$PWD/build-windows/lua-dist
#   cmake --build build-windows && ctest --test-dir build-windows
#
# The posix-thread compilers (x86_64-w64-mingw32-g++-posix): GCC 12's default
# win32 thread model has no std::thread or std::mutex. Everything links
# -static: libstdc++, libgcc and winpthread go into each .exe and .dll, which
# then import only system DLLs (and the Lua DLL).
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(SOCK_MINGW_TRIPLET x86_64-w64-mingw32 CACHE STRING "mingw-w64 target triplet (compiler prefix)")
find_program(CMAKE_C_COMPILER NAMES ${SOCK_MINGW_TRIPLET}-gcc-posix ${SOCK_MINGW_TRIPLET}-gcc REQUIRED)
find_program(CMAKE_CXX_COMPILER NAMES ${SOCK_MINGW_TRIPLET}-g++-posix ${SOCK_MINGW_TRIPLET}-g++ REQUIRED)
find_program(CMAKE_RC_COMPILER NAMES ${SOCK_MINGW_TRIPLET}-windres)

# Headers and libraries from the mingw sysroot only; programs from the host.
set(CMAKE_FIND_ROOT_PATH /usr/${SOCK_MINGW_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# A Windows OpenSSL outside the sysroot (scripts/windows-openssl's, named by
# -DOPENSSL_ROOT_DIR): its prefix is a root too, else FindOpenSSL would look
# for it under the sysroot only.
if(OPENSSL_ROOT_DIR)
  list(APPEND CMAKE_FIND_ROOT_PATH "${OPENSSL_ROOT_DIR}")
endif()

set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static")
set(CMAKE_MODULE_LINKER_FLAGS_INIT "-static")

# try_run, add_test and catch_discover_tests run the programs under Wine,
# in the project's own Wine prefix (see scripts/wine-run).
get_filename_component(_sock_source_dir "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(CMAKE_CROSSCOMPILING_EMULATOR "${_sock_source_dir}/scripts/wine-run")
