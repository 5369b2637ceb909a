# Tests of the kernel drop capture (userspace/bpf, bpf/). Included from tests/integration/CMakeLists.txt.
#   npt_capture_unit_test   no root: reason names from fake BTF enumerators, kallsyms parsing, enforcement
#                           mapping, one-line errors of DropCapture::open
#   npt_flow_cache_test     no root: the per-CPU flow cache's slots added to the flows map, over pages in memory
#   npt_drop_decoder_test   no root: drop records recorded from a real kernel, decoded with what was recorded
#                           with them (reason names, kernel symbols, the namespaces' tables and interfaces)
#   npt_capture_netns_test  root (label "root"): real drops in private network namespaces; skipped without root,
#                           failed instead under CI=true
#   npt_capture_tool        driver for scripts/bench-capture-cost and manual checks (not a test)
#   npt_bench_floor         an empty program on the same tracepoint, for scripts/bench-drops (not a test)
if(NOT TARGET npt_capture)
  return()  # NPT_BUILD_BPF=OFF
endif()
include(${PROJECT_SOURCE_DIR}/cmake/bpf.cmake)

add_executable(npt_capture_unit_test ${CMAKE_CURRENT_LIST_DIR}/capture_unit_test.cpp)
target_link_libraries(npt_capture_unit_test PRIVATE npt_capture GTest::gtest_main)
add_test(NAME npt_capture_unit_test COMMAND npt_capture_unit_test)

add_executable(npt_flow_cache_test ${CMAKE_CURRENT_LIST_DIR}/flow_cache_test.cpp)
target_link_libraries(npt_flow_cache_test PRIVATE npt_capture GTest::gtest_main)
add_test(NAME npt_flow_cache_test COMMAND npt_flow_cache_test)

add_executable(npt_drop_decoder_test ${CMAKE_CURRENT_LIST_DIR}/drop_decoder_test.cpp)
target_link_libraries(npt_drop_decoder_test PRIVATE npt_capture GTest::gtest_main)
target_compile_definitions(npt_drop_decoder_test PRIVATE
  NPT_RECORDED_DROPS="${PROJECT_SOURCE_DIR}/tests/fixtures/capture/recorded-drops.txt")
add_test(NAME npt_drop_decoder_test COMMAND npt_drop_decoder_test)

# A tc ingress program the root tests use to produce TC_INGRESS drops.
npt_bpf_skeleton(capture_tc_drop SOURCE ${CMAKE_CURRENT_LIST_DIR}/capture_tc_drop.bpf.c)

add_executable(npt_capture_netns_test
  ${CMAKE_CURRENT_LIST_DIR}/capture_netns_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/capture_netns_lab.cpp)
target_include_directories(npt_capture_netns_test PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(npt_capture_netns_test PRIVATE npt_capture npt_capture_tc_drop_skel GTest::gtest_main
                                                     Threads::Threads)
add_test(NAME npt_capture_netns_test COMMAND npt_capture_netns_test)
# Namespaces, rules and qdiscs are per test and uniquely named, but the BPF programs see every drop of the host
# and the tracepoint variant may mount tracefs: run alone.
set_tests_properties(npt_capture_netns_test PROPERTIES LABELS root RUN_SERIAL TRUE TIMEOUT 600)

add_executable(npt_capture_tool ${CMAKE_CURRENT_LIST_DIR}/capture_tool.cpp)
target_link_libraries(npt_capture_tool PRIVATE npt_capture)

# The "empty" mode of scripts/bench-drops: an empty program on the capture's tracepoint (not a test).
npt_bpf_skeleton(bench_floor SOURCE ${CMAKE_CURRENT_LIST_DIR}/bench_floor.bpf.c)
add_executable(npt_bench_floor ${CMAKE_CURRENT_LIST_DIR}/bench_floor.cpp)
target_link_libraries(npt_bench_floor PRIVATE npt_bench_floor_skel)
