# The netlink parsers of userspace/netfilter: nftables trace messages (parse_trace_message and the
# TraceAssembler), NFT_MSG_GETRULE replies (nft_rule_message_comments), nfnetlink_log records (parse_nflog_packet)
# and ctnetlink events (parse_conntrack_event); libmnl, libnftnl, libnftables and libnetfilter_conntrack are the
# system builds.
npt_fuzz_target(netlink_fuzz
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/netlink_fuzz.cpp
          ${PROJECT_SOURCE_DIR}/userspace/common/ip_addr.cpp
          ${PROJECT_SOURCE_DIR}/userspace/netfilter/packet_tuple.cpp
          ${PROJECT_SOURCE_DIR}/userspace/netfilter/netlink_request.cpp
          ${PROJECT_SOURCE_DIR}/userspace/netfilter/nft_rule_comment.cpp
          ${PROJECT_SOURCE_DIR}/userspace/netfilter/trace_assembler.cpp
          ${PROJECT_SOURCE_DIR}/userspace/netfilter/rule_comments.cpp
          ${PROJECT_SOURCE_DIR}/userspace/netfilter/rule_tracer.cpp
          ${PROJECT_SOURCE_DIR}/userspace/netfilter/nflog_listener.cpp
          ${PROJECT_SOURCE_DIR}/userspace/netfilter/conntrack_listener.cpp
  LIBRARIES PkgConfig::NPT_NFTABLES PkgConfig::NPT_NFTNL PkgConfig::NPT_MNL PkgConfig::NPT_CONNTRACK fmt::fmt
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/netlink
  SECONDS 10)
