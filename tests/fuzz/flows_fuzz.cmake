# libFuzzer target for the connections reader (whatif/advise --flows, the agents' journal, `flows` merging the
# agents' /flows) and its time and duration parsers.
# Their sources are compiled into the target so they carry the fuzzer's coverage instrumentation.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(WARNING "flows_fuzz needs clang (CXX=clang++); not built")
  return()
endif()

add_executable(flows_fuzz ${CMAKE_CURRENT_LIST_DIR}/flows_fuzz.cpp
                          ${PROJECT_SOURCE_DIR}/userspace/flows/connection.cpp
                          ${PROJECT_SOURCE_DIR}/userspace/state/objects.cpp
                          ${PROJECT_SOURCE_DIR}/userspace/common/ip_addr.cpp)
target_include_directories(flows_fuzz PRIVATE ${PROJECT_SOURCE_DIR}/userspace ${PROJECT_SOURCE_DIR}/include)
target_compile_options(flows_fuzz PRIVATE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
                                          -fno-omit-frame-pointer -g)
target_link_options(flows_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_libraries(flows_fuzz PRIVATE simdjson::simdjson fmt::fmt nlohmann_json::nlohmann_json)

set(NPT_FLOWS_FUZZ_CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/flows)
add_test(NAME flows_fuzz_smoke
         COMMAND sh -c "d=$(mktemp -d) && cp '${NPT_FLOWS_FUZZ_CORPUS}'/* \"$d\"/ && \
'$<TARGET_FILE:flows_fuzz>' -max_total_time=10 -rss_limit_mb=2048 -timeout=10 \"$d\"; rc=$?; rm -rf \"$d\"; exit $rc")
set_tests_properties(flows_fuzz_smoke PROPERTIES TIMEOUT 120 LABELS fuzz)
