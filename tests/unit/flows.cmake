# The working connections room: the flows contract line, the agent's bounded table, its journal, filters.
add_executable(flows_test ${CMAKE_CURRENT_LIST_DIR}/flows_test.cpp)
target_link_libraries(flows_test PRIVATE npt_flows GTest::gtest_main)
target_compile_definitions(flows_test PRIVATE NPT_EXAMPLES_DIR="${NPT_EXAMPLES_DIR}")
gtest_discover_tests(flows_test)
