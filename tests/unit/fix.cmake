# --fix: the best fix of each denying side, applied to the state by the test, lets the probe through; its reach
# equals an exhaustive pair-by-pair count.
add_executable(fix_test ${CMAKE_CURRENT_LIST_DIR}/fix_test.cpp)
target_link_libraries(fix_test PRIVATE npt_policy GTest::gtest_main)
target_compile_definitions(fix_test PRIVATE NPT_EXAMPLES_DIR="${NPT_EXAMPLES_DIR}")
gtest_discover_tests(fix_test)
