# The --state loader (JSON and YAML, kubectl lists and manifests); simdjson and yaml-cpp are the system builds.
npt_fuzz_target(state_fuzz
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/state_fuzz.cpp
          ${PROJECT_SOURCE_DIR}/userspace/common/ip_addr.cpp
          ${PROJECT_SOURCE_DIR}/userspace/state/objects.cpp
          ${PROJECT_SOURCE_DIR}/userspace/state/k8s_validation.cpp
          ${PROJECT_SOURCE_DIR}/userspace/state/node_adapter.cpp
          ${PROJECT_SOURCE_DIR}/userspace/state/k8s_decode.cpp
          ${PROJECT_SOURCE_DIR}/userspace/state/json_scan.cpp
          ${PROJECT_SOURCE_DIR}/userspace/state/state_loader.cpp
  LIBRARIES simdjson::simdjson yaml-cpp fmt::fmt
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/state
  SECONDS 20)
