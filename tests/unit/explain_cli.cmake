add_executable(explain_cli_test ${CMAKE_CURRENT_LIST_DIR}/explain_cli_test.cpp)
target_link_libraries(explain_cli_test PRIVATE npt_cli GTest::gtest_main)
target_compile_definitions(explain_cli_test PRIVATE NPT_EXAMPLES_DIR="${NPT_EXAMPLES_DIR}"
                                                   NPT_FIXTURES_DIR="${NPT_FIXTURES_DIR}")
gtest_discover_tests(explain_cli_test)

# The binary itself: usage errors exit 2 with one line, help exits 0.
add_test(NAME cli_help COMMAND netpol-trace explain --help)
add_test(NAME cli_unknown_flag COMMAND netpol-trace explain --bogus)
set_tests_properties(cli_unknown_flag PROPERTIES WILL_FAIL TRUE)
