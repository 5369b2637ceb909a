# libFuzzer target for the --state loader. The loader's sources are compiled into the target so
# they carry the fuzzer's coverage instrumentation; simdjson and yaml-cpp are the system builds.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(WARNING "state_fuzz needs clang (CXX=clang++); not built")
  return()
endif()

set(NPT_STATE_FUZZ_SOURCES
  ${PROJECT_SOURCE_DIR}/userspace/common/ip_addr.cpp
  ${PROJECT_SOURCE_DIR}/userspace/state/objects.cpp
  ${PROJECT_SOURCE_DIR}/userspace/state/k8s_validation.cpp
  ${PROJECT_SOURCE_DIR}/userspace/state/node_adapter.cpp
  ${PROJECT_SOURCE_DIR}/userspace/state/k8s_decode.cpp
  ${PROJECT_SOURCE_DIR}/userspace/state/state_loader.cpp)
add_executable(state_fuzz ${CMAKE_CURRENT_LIST_DIR}/state_fuzz.cpp ${NPT_STATE_FUZZ_SOURCES})
target_include_directories(state_fuzz PRIVATE ${PROJECT_SOURCE_DIR}/userspace ${PROJECT_SOURCE_DIR}/include)
target_compile_options(state_fuzz PRIVATE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
                                          -fno-omit-frame-pointer -g)
target_link_options(state_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_libraries(state_fuzz PRIVATE simdjson::simdjson yaml-cpp fmt::fmt)

# A bounded run over a scratch copy of the seed corpus (libFuzzer adds what it finds to it).
set(NPT_STATE_FUZZ_CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/state)
add_test(NAME state_fuzz_smoke
         COMMAND sh -c "d=$(mktemp -d) && cp '${NPT_STATE_FUZZ_CORPUS}'/* \"$d\"/ && \
'$<TARGET_FILE:state_fuzz>' -max_total_time=20 -rss_limit_mb=2048 -timeout=10 \"$d\"; rc=$?; rm -rf \"$d\"; exit $rc")
set_tests_properties(state_fuzz_smoke PROPERTIES TIMEOUT 120 LABELS fuzz)
