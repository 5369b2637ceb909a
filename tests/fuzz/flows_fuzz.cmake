# The connection lines (whatif/advise --flows, the agents' journal, `flows` merging the agents' /flows) and their
# time and duration parsers.
npt_fuzz_target(flows_fuzz
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/flows_fuzz.cpp
          ${PROJECT_SOURCE_DIR}/userspace/flows/connection.cpp
          ${PROJECT_SOURCE_DIR}/userspace/state/objects.cpp
          ${PROJECT_SOURCE_DIR}/userspace/common/ip_addr.cpp
  LIBRARIES simdjson::simdjson fmt::fmt nlohmann_json::nlohmann_json
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/flows
  SECONDS 10)
