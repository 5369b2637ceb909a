# ClusterState::derive: a snapshot with a change applied, as --fix, whatif and advise evaluate it.
add_executable(state_derive_test ${CMAKE_CURRENT_LIST_DIR}/state_derive_test.cpp)
target_link_libraries(state_derive_test PRIVATE npt_policy GTest::gtest_main)
gtest_discover_tests(state_derive_test)
