# The --state file loader: formats, defaulting, validation messages, merging, bad input.
add_executable(state_loader_test ${CMAKE_CURRENT_LIST_DIR}/state_loader_test.cpp)
target_link_libraries(state_loader_test PRIVATE npt_state GTest::gtest_main)
target_compile_definitions(state_loader_test PRIVATE NPT_FIXTURES_DIR="${NPT_FIXTURES_DIR}"
                                                     NPT_EXAMPLES_DIR="${NPT_EXAMPLES_DIR}")
gtest_discover_tests(state_loader_test)

# ClusterNetworkPolicy, AdminNetworkPolicy and BaselineAdminNetworkPolicy: decoding and validation.
add_executable(cluster_policy_loader_test ${CMAKE_CURRENT_LIST_DIR}/cluster_policy_loader_test.cpp)
target_link_libraries(cluster_policy_loader_test PRIVATE npt_state GTest::gtest_main)
gtest_discover_tests(cluster_policy_loader_test)

# The JSON value scanner that splits kubectl lists into items (SSE2 blocks and byte by byte).
add_executable(json_scan_test ${CMAKE_CURRENT_LIST_DIR}/json_scan_test.cpp)
target_link_libraries(json_scan_test PRIVATE npt_state GTest::gtest_main)
gtest_discover_tests(json_scan_test)
