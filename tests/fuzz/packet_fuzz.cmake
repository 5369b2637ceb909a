# parse_packet (userspace/netfilter): the tuple parser of trace messages and NFLOG payloads.
npt_fuzz_target(packet_fuzz
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/packet_fuzz.cpp
          ${PROJECT_SOURCE_DIR}/userspace/netfilter/packet_tuple.cpp
          ${PROJECT_SOURCE_DIR}/userspace/common/ip_addr.cpp
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/packet
  SECONDS 10)
