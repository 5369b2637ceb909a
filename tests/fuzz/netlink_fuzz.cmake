# libFuzzer target for the netlink parsers of userspace/netfilter: nftables trace messages (parse_trace_message
# and the TraceAssembler), NFT_MSG_GETRULE replies (nft_rule_message_comments) and nfnetlink_log records
# (parse_nflog_packet). The library's sources are compiled into the target so they carry the fuzzer's
# coverage instrumentation; libmnl, libnftnl and libnftables are the system builds.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(WARNING "netlink_fuzz needs clang (CXX=clang++); not built")
  return()
endif()

set(NPT_NETLINK_FUZZ_SOURCES
  ${PROJECT_SOURCE_DIR}/userspace/common/ip_addr.cpp
  ${PROJECT_SOURCE_DIR}/userspace/netfilter/packet_tuple.cpp
  ${PROJECT_SOURCE_DIR}/userspace/netfilter/netlink_request.cpp
  ${PROJECT_SOURCE_DIR}/userspace/netfilter/nft_rule_comment.cpp
  ${PROJECT_SOURCE_DIR}/userspace/netfilter/trace_assembler.cpp
  ${PROJECT_SOURCE_DIR}/userspace/netfilter/rule_comments.cpp
  ${PROJECT_SOURCE_DIR}/userspace/netfilter/rule_tracer.cpp
  ${PROJECT_SOURCE_DIR}/userspace/netfilter/nflog_listener.cpp)
add_executable(netlink_fuzz ${CMAKE_CURRENT_LIST_DIR}/netlink_fuzz.cpp ${NPT_NETLINK_FUZZ_SOURCES})
target_include_directories(netlink_fuzz PRIVATE ${PROJECT_SOURCE_DIR}/userspace ${PROJECT_SOURCE_DIR}/include)
target_compile_options(netlink_fuzz PRIVATE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
                                            -fno-omit-frame-pointer -g)
target_link_options(netlink_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_libraries(netlink_fuzz PRIVATE PkgConfig::NPT_NFTABLES PkgConfig::NPT_NFTNL PkgConfig::NPT_MNL)

# A bounded run over a scratch copy of the seed corpus (libFuzzer adds what it finds to it).
set(NPT_NETLINK_FUZZ_CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/netlink)
add_test(NAME netlink_fuzz_smoke
         COMMAND sh -c "d=$(mktemp -d) && cp '${NPT_NETLINK_FUZZ_CORPUS}'/* \"$d\"/ && \
'$<TARGET_FILE:netlink_fuzz>' -max_total_time=10 -rss_limit_mb=2048 -timeout=10 \"$d\"; rc=$?; rm -rf \"$d\"; exit $rc")
set_tests_properties(netlink_fuzz_smoke PROPERTIES TIMEOUT 120 LABELS fuzz)
