# cmake -DSOURCE_DIR= -DWORK_DIR= -DPREFIX= -DLUA_DIR= -DTOOLCHAIN= [-DGENERATOR=] [-DEMULATOR=]
#       [-DOPENSSL_ROOT_DIR= -DOPENSSL_USE_STATIC_LIBS=] -P run_windows_host.cmake
# Configures, builds and runs the host project in SOURCE_DIR against the
# installed sock in PREFIX (find_package(sock)) and the Windows Lua in LUA_DIR.
cmake_minimum_required(VERSION 3.16)
function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 240)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  set(last_output "${out}${err}" PARENT_SCOPE)
endfunction()
file(REMOVE_RECURSE ${WORK_DIR})
set(args -S ${SOURCE_DIR} -B ${WORK_DIR} -DCMAKE_BUILD_TYPE=Release -DSOCK_HOST_LUA_DIR=${LUA_DIR})
if(TOOLCHAIN)
  # The toolchain searches packages in the mingw sysroot only: name the
  # prefix's package directory (as a host would with CMAKE_PREFIX_PATH).
  list(APPEND args -DCMAKE_TOOLCHAIN_FILE=${TOOLCHAIN} -Dsock_DIR=${PREFIX}/lib/cmake/sock)
else()
  list(APPEND args -DCMAKE_PREFIX_PATH=${PREFIX})
endif()
if(GENERATOR)
  list(APPEND args -G ${GENERATOR})
endif()
# sock built with TLS: its package finds the same OpenSSL (find_dependency)
if(OPENSSL_ROOT_DIR)
  list(APPEND args -DOPENSSL_ROOT_DIR=${OPENSSL_ROOT_DIR} -DOPENSSL_USE_STATIC_LIBS=${OPENSSL_USE_STATIC_LIBS})
endif()
run("configuring the host" ${CMAKE_COMMAND} ${args})
run("building the host" ${CMAKE_COMMAND} --build ${WORK_DIR})
# the Lua DLL beside the .exe, where Windows looks first
file(GLOB lua_dll ${LUA_DIR}/bin/lua*.dll)
file(COPY ${lua_dll} DESTINATION ${WORK_DIR})
run("running the host" ${EMULATOR} ${WORK_DIR}/windows_host.exe)
message("${last_output}")
