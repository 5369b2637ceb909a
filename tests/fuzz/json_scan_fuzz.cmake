# The --state loader's JSON value scanner (SSE2 blocks and byte by byte) against a reference in the fuzzer; the
# state corpus's kubectl lists are its seeds.
npt_fuzz_target(json_scan_fuzz
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/json_scan_fuzz.cpp
          ${PROJECT_SOURCE_DIR}/userspace/state/json_scan.cpp
  CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/state
  SECONDS 10)
