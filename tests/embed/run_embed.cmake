# cmake -DBUILD_DIR= -DSOURCE_DIR= -DWORK_DIR= -DCXX= [-DFLAGS=] [-DBACKENDS=epoll;io_uring] -P run_embed.cmake
# Installs BUILD_DIR to WORK_DIR/prefix, builds examples/embed against it, runs
# it and checks its output. WORK_DIR is removed afterwards when all went well.
cmake_minimum_required(VERSION 3.16)

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 240)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  set(last_output "${out}${err}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(config_args)
if(CONFIG)
  set(config_args --config ${CONFIG})
endif()
run("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix ${config_args})
foreach(f include/sock/loop.hpp include/sock/luaopen_sock.h lib/libsock_core.a lib/libsock_lua.a
          lib/cmake/sock/sockConfig.cmake lib/cmake/sock/sockConfigVersion.cmake)
  if(NOT EXISTS ${WORK_DIR}/prefix/${f})
    message(FATAL_ERROR "cmake --install did not install ${f}")
  endif()
endforeach()

run("configuring examples/embed" ${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/embed -B ${WORK_DIR}/build
    -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_CXX_COMPILER=${CXX}
    "-DCMAKE_CXX_FLAGS=${FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${FLAGS}")
run("building examples/embed" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
# Once per backend: the host loop must work whether sock's fd is an epoll fd
# or an io_uring ring.
if(NOT BACKENDS)
  set(BACKENDS epoll)
endif()
foreach(backend IN LISTS BACKENDS)
  run("running sock_embed (${backend})" ${CMAKE_COMMAND} -E env SOCK_BACKEND=${backend} ${WORK_DIR}/build/sock_embed)
  message(STATUS "sock_embed (SOCK_BACKEND=${backend}) printed:\n${last_output}")
  foreach(expected
      "lua: echo server on 127\\.0\\.0\\.1:[0-9]+ \\(${backend} backend\\)"
      "lua: client got back: ping 1\n"
      "lua: client got back: ping 3\n"
      "lua: client done"
      "host: sock finished: [1-9][0-9]* wakeups for sock's fd, [1-9][0-9]* for sock's timers"
      "host: OK, 3 messages echoed")
    if(NOT last_output MATCHES "${expected}")
      message(FATAL_ERROR "sock_embed's output (${backend}) lacks /${expected}/")
    endif()
  endforeach()
endforeach()
file(REMOVE_RECURSE ${WORK_DIR})
