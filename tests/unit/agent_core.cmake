add_executable(agent_core_test ${CMAKE_CURRENT_LIST_DIR}/agent_core_test.cpp)
target_link_libraries(agent_core_test PRIVATE npt_agent_core GTest::gtest_main)
gtest_discover_tests(agent_core_test PROPERTIES LABELS threads)  # also run under ThreadSanitizer
