# The lines of `explain --probes`: the plain-line reader against the DOM parse it stands in for.
npt_fuzz_target(probe_line_fuzz
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/probe_line_fuzz.cpp
          ${PROJECT_SOURCE_DIR}/userspace/cli/probe_line.cpp
          ${PROJECT_SOURCE_DIR}/userspace/state/objects.cpp
          ${PROJECT_SOURCE_DIR}/userspace/common/ip_addr.cpp
          ${PROJECT_SOURCE_DIR}/userspace/common/json_writer.cpp
  LIBRARIES fmt::fmt nlohmann_json::nlohmann_json
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/probe_line
  SECONDS 10)
