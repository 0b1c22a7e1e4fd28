# The Windows tests (included by tests/CMakeLists.txt when WIN32): the core
# tests and the Lua suite on every Windows interpreter, over the iocp
# backend. Cross-built with mingw-w64 they run under Wine: each command goes
# through CMAKE_CROSSCOMPILING_EMULATOR (scripts/wine-run, set by
# cmake/toolchain-mingw-w64.cmake); on Windows itself it is empty and they
# run as they are. Every test here carries the label `windows`.
#
# A test of a Linux-only feature reports itself skipped (testlib's
# T.skip_file: exit status 77, CTest's SKIP_RETURN_CODE) with its reason.

set(SOCK_RUN ${CMAKE_CROSSCOMPILING_EMULATOR})

# A path as the Windows programs see it: natively on Windows, else Wine's
# Z: drive, which maps the host's /.
function(sock_windows_path out path)
  if(CMAKE_HOST_WIN32)
    file(TO_NATIVE_PATH "${path}" p)
  else()
    string(REPLACE "/" "\\" p "Z:${path}")
  endif()
  set(${out} "${p}" PARENT_SCOPE)
endfunction()

# --- core tests: Catch2 v2, header-only ------------------------------------
# The cross compiler does not search the host's /usr/include, and must not
# (the host's headers are Linux's): a private include directory holds only a
# `catch2` link to the host's Catch2 headers (Debian's catch2 package).
find_path(SOCK_CATCH2_INCLUDE_DIR catch2/catch.hpp
  PATHS /usr/include /usr/local/include NO_DEFAULT_PATH NO_CMAKE_FIND_ROOT_PATH)
find_file(SOCK_CATCH2_CMAKE Catch.cmake
  PATHS /usr/lib/cmake/Catch2 /usr/share/cmake/Catch2 /usr/local/lib/cmake/Catch2
  NO_DEFAULT_PATH NO_CMAKE_FIND_ROOT_PATH)
if(NOT SOCK_CATCH2_INCLUDE_DIR OR NOT SOCK_CATCH2_CMAKE)
  message(FATAL_ERROR "Catch2 v2 (catch2/catch.hpp and Catch.cmake) not found: install Debian's catch2")
endif()
set(catch_inc ${CMAKE_CURRENT_BINARY_DIR}/catch2-include)
file(MAKE_DIRECTORY ${catch_inc})
if(NOT EXISTS ${catch_inc}/catch2/catch.hpp)
  file(CREATE_LINK ${SOCK_CATCH2_INCLUDE_DIR}/catch2 ${catch_inc}/catch2 SYMBOLIC)
endif()
add_library(sock_catch2 INTERFACE)
target_include_directories(sock_catch2 INTERFACE ${catch_inc})
include(${SOCK_CATCH2_CMAKE})

file(GLOB CORE_TEST_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/core/*.cpp)
# Test files of what Windows does not have are not built; each is reported
# as a skipped test `core:<file>` that prints why (the text CTest's
# SKIP_REGULAR_EXPRESSION matches), so none of them counts as passing. (No
# ';' in a reason: it would split the entry in two.)
set(core_not_built
  "test_uring.cpp|io_uring (and the seccomp filter, fork and /proc its tests use) is Linux's"
  "test_kqueue.cpp|the kqueue backend is not built on Windows")
if(NOT SOCK_HAVE_TLS)
  list(APPEND core_not_built
    "test_tls.cpp|TLS needs OpenSSL 3, which this build did not find (scripts/windows-openssl builds it, OPENSSL_ROOT_DIR names it)")
endif()
set(SOCK_NOT_APPLICABLE_TEXT "not applicable on this platform: ")  # as in core/test_net.hpp
foreach(entry IN LISTS core_not_built)
  string(FIND "${entry}" "|" bar)
  string(SUBSTRING "${entry}" 0 ${bar} file)
  math(EXPR bar "${bar} + 1")
  string(SUBSTRING "${entry}" ${bar} -1 reason)
  list(REMOVE_ITEM CORE_TEST_SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/core/${file})
  get_filename_component(name ${file} NAME_WE)
  message(STATUS "sock: core/${file} is not built on Windows: ${reason}")
  add_test(NAME core:${name}:not-built
           COMMAND ${CMAKE_COMMAND} -E echo "${SOCK_NOT_APPLICABLE_TEXT}core/${file} is not built: ${reason}")
  set_tests_properties(core:${name}:not-built PROPERTIES
    LABELS "core;windows" SKIP_REGULAR_EXPRESSION "${SOCK_NOT_APPLICABLE_TEXT}")
endforeach()
add_executable(sock_core_tests ${CORE_TEST_SOURCES})
target_link_libraries(sock_core_tests PRIVATE sock_core sock_catch2)
# Discovery runs the .exe (under Wine) after each build. [iocp] tests run the
# loop over IOCP; the rest (addresses, options, ...) need no backend. A test
# case of a feature Windows lacks ([not_applicable], SOCK_NOT_APPLICABLE_TEST_CASE
# in core/test_net.hpp) prints why and is reported as skipped.
# (The labels are set afterwards, from the TEST_LIST variables: a list given
# in PROPERTIES reaches the generated set_tests_properties() unquoted, its
# items read as property names, and the properties after it are lost.)
catch_discover_tests(sock_core_tests TEST_SPEC "[iocp]" TEST_PREFIX "core:" TEST_LIST core_iocp_tests
                     PROPERTIES TIMEOUT 300)
# [tls]: the TLS engine over memory (no sockets), labelled tls as well.
catch_discover_tests(sock_core_tests TEST_SPEC "[tls]" TEST_PREFIX "core:" TEST_LIST core_tls_tests
                     PROPERTIES TIMEOUT 300)
catch_discover_tests(sock_core_tests TEST_SPEC "~[iocp]~[uring]~[epoll]~[kqueue]~[tls]" TEST_PREFIX "core:"
                     TEST_LIST core_other_tests
                     PROPERTIES TIMEOUT 300 SKIP_REGULAR_EXPRESSION "${SOCK_NOT_APPLICABLE_TEXT}")
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/core_backend_labels.cmake
  "if(core_iocp_tests)\n  set_tests_properties(\${core_iocp_tests} PROPERTIES LABELS \"core;iocp;windows\")\nendif()\n"
  "if(core_tls_tests)\n  set_tests_properties(\${core_tls_tests} PROPERTIES LABELS \"core;tls;windows\")\nendif()\n"
  "if(core_other_tests)\n  set_tests_properties(\${core_other_tests} PROPERTIES LABELS \"core;windows\")\nendif()\n")
set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${CMAKE_CURRENT_BINARY_DIR}/core_backend_labels.cmake)

# --- the Lua suite, per interpreter, over iocp ---------------------------------
file(GLOB LUA_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/lua/test_*.lua)
sock_windows_path(lua_dir_w ${CMAKE_CURRENT_SOURCE_DIR}/lua)
set(SOCK_WINDOWS_TEST_TIMEOUT 600 CACHE STRING "Timeout of each Windows Lua test file, in seconds (Wine is slow)")

# TLS: test_tls.lua's certificates. It makes them itself with sh and the
# openssl command (tests/lua/tls-certs.sh), which no Windows interpreter can
# run under Wine: a fixture runs that script once on the host, into the build
# tree, and SOCK_TEST_CERT_DIR names the directory to every test_tls and
# test_jit_tls.
set(tls_cert_env "")
set(tls_root_ca OFF)
if(SOCK_HAVE_TLS)
  find_program(SOCK_HOST_SH sh)          # (programs come from the host: the toolchain file)
  find_program(SOCK_HOST_OPENSSL openssl)
  if(SOCK_HOST_SH AND SOCK_HOST_OPENSSL)
    set(cert_dir ${CMAKE_CURRENT_BINARY_DIR}/tls-certs)
    add_test(NAME tls:certs COMMAND ${SOCK_HOST_SH} ${CMAKE_CURRENT_SOURCE_DIR}/lua/tls-certs.sh ${cert_dir})
    set_tests_properties(tls:certs PROPERTIES LABELS "tls;windows" FIXTURES_SETUP sock_tls_certs TIMEOUT 60)
    sock_windows_path(cert_dir_w ${cert_dir})
    set(tls_cert_env "SOCK_TEST_CERT_DIR=${cert_dir_w}")
    # test_tls_system_ca: the test CA in the current user's ROOT store for
    # the run (tests/windows/root_ca.c), only under Wine, whose store is the
    # test prefix's: on a real Windows adding a root asks the user, and the
    # file skips itself.
    if(SOCK_RUN)
      add_executable(sock_test_root_ca ${CMAKE_CURRENT_SOURCE_DIR}/windows/root_ca.c)
      target_link_libraries(sock_test_root_ca PRIVATE crypt32)
      sock_windows_path(ca_w ${cert_dir}/ca.pem)
      add_test(NAME tls:root-ca:add COMMAND ${SOCK_RUN} $<TARGET_FILE:sock_test_root_ca> add ${ca_w})
      add_test(NAME tls:root-ca:remove COMMAND ${SOCK_RUN} $<TARGET_FILE:sock_test_root_ca> remove ${ca_w})
      set_tests_properties(tls:root-ca:add PROPERTIES LABELS "tls;windows" TIMEOUT 120
                           FIXTURES_SETUP sock_tls_root_ca FIXTURES_REQUIRED sock_tls_certs)
      set_tests_properties(tls:root-ca:remove PROPERTIES LABELS "tls;windows" TIMEOUT 120
                           FIXTURES_CLEANUP sock_tls_root_ca)
      set(tls_root_ca ON)
    endif()
  else()
    message(WARNING "sh or openssl not found on the host: test_tls.lua has no certificates and skips (with the reason)")
  endif()
endif()

foreach(v IN LISTS SOCK_BUILT_INTERPRETERS)
  set(exe ${SOCK_LUA_EXE_${v}})
  if(NOT exe)
    message(WARNING "no Windows interpreter for Lua ${v} (SOCK_WINDOWS_LUA_DIR): its tests are not registered")
    continue()
  endif()
  if(v STREQUAL "luajit")
    set(label luajit)
  else()
    set(label lua${v})
  endif()
  sock_windows_path(cpath_w ${CMAKE_BINARY_DIR}/lua/${v})
  foreach(t IN LISTS LUA_TESTS)
    get_filename_component(name ${t} NAME_WE)
    if(name MATCHES "^test_jit_" AND NOT v STREQUAL "luajit")
      continue()
    endif()
    set(test_name ${label}:${name}:iocp)
    add_test(NAME ${test_name} COMMAND ${SOCK_RUN} ${exe} ${name}.lua
             WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/lua)
    set(labels "lua;${label};iocp;windows")
    if(name MATCHES "^test_(jit_)?tls")
      list(APPEND labels tls)
    endif()
    # LUA_CPATH_5_x too: 5.2+ prefer it to LUA_CPATH when it is set, and the
    # user's own must not load another sock.dll.
    set(env "SOCK_BACKEND=iocp" "SOCK_REQUIRE_BACKEND=iocp"
            "LUA_CPATH=${cpath_w}\\?.dll" "LUA_PATH=${lua_dir_w}\\?.lua")
    if(NOT v STREQUAL "luajit" AND NOT v STREQUAL "5.1")
      string(REPLACE "." "_" vv ${v})
      list(APPEND env "LUA_CPATH_${vv}=${cpath_w}\\?.dll" "LUA_PATH_${vv}=${lua_dir_w}\\?.lua")
    endif()
    set_tests_properties(${test_name} PROPERTIES
      LABELS "${labels}" TIMEOUT ${SOCK_WINDOWS_TEST_TIMEOUT} SKIP_RETURN_CODE 77
      ENVIRONMENT "${env}")
    if(name STREQUAL "test_fairness")
      set_tests_properties(${test_name} PROPERTIES RUN_SERIAL TRUE)
    endif()
    if(name MATCHES "^test_(jit_)?tls" AND tls_cert_env)
      set_property(TEST ${test_name} APPEND PROPERTY ENVIRONMENT "${tls_cert_env}")
      set_tests_properties(${test_name} PROPERTIES FIXTURES_REQUIRED sock_tls_certs)
    endif()
    if(name STREQUAL "test_tls_system_ca" AND tls_root_ca)
      set_property(TEST ${test_name} APPEND PROPERTY ENVIRONMENT "SOCK_TEST_SYSTEM_CA=ROOT")
      set_tests_properties(${test_name} PROPERTIES FIXTURES_REQUIRED "sock_tls_certs;sock_tls_root_ca")
    endif()
  endforeach()
endforeach()

# Packaging: cmake --install into a prefix, and find_package(sock) from a
# host project built with the same toolchain.
include(${CMAKE_CURRENT_SOURCE_DIR}/packaging/windows.cmake)
