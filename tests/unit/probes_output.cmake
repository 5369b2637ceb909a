# explain --probes: the streaming JSON writer against the DOM's dump, and the binary's batches against the
# reference path, byte for byte.
add_executable(probes_output_test ${CMAKE_CURRENT_LIST_DIR}/probes_output_test.cpp)
target_link_libraries(probes_output_test PRIVATE npt_cli GTest::gtest_main)
target_compile_definitions(probes_output_test PRIVATE NPT_EXAMPLES_DIR="${NPT_EXAMPLES_DIR}"
                           NPT_FIXTURES_DIR="${NPT_FIXTURES_DIR}" NPT_BINARY="$<TARGET_FILE:netpol-trace>")
add_dependencies(probes_output_test netpol-trace)
gtest_discover_tests(probes_output_test DISCOVERY_TIMEOUT 30)
