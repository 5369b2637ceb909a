# libFuzzer target for parse_packet (userspace/netfilter): the tuple parser of trace messages and NFLOG payloads.
# Its sources are compiled into the target so they carry the fuzzer's coverage instrumentation.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(WARNING "packet_fuzz needs clang (CXX=clang++); not built")
  return()
endif()

add_executable(packet_fuzz ${CMAKE_CURRENT_LIST_DIR}/packet_fuzz.cpp
                           ${PROJECT_SOURCE_DIR}/userspace/netfilter/packet_tuple.cpp
                           ${PROJECT_SOURCE_DIR}/userspace/common/ip_addr.cpp)
target_include_directories(packet_fuzz PRIVATE ${PROJECT_SOURCE_DIR}/userspace ${PROJECT_SOURCE_DIR}/include)
target_compile_options(packet_fuzz PRIVATE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
                                           -fno-omit-frame-pointer -g)
target_link_options(packet_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)

# A bounded run over a scratch copy of the seed corpus (libFuzzer adds what it finds to it).
set(NPT_PACKET_FUZZ_CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/packet)
add_test(NAME packet_fuzz_smoke
         COMMAND sh -c "d=$(mktemp -d) && cp '${NPT_PACKET_FUZZ_CORPUS}'/* \"$d\"/ && \
'$<TARGET_FILE:packet_fuzz>' -max_total_time=10 -rss_limit_mb=2048 -timeout=10 \"$d\"; rc=$?; rm -rf \"$d\"; exit $rc")
set_tests_properties(packet_fuzz_smoke PROPERTIES TIMEOUT 120 LABELS fuzz)
