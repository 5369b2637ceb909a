add_executable(explain_cli_test ${CMAKE_CURRENT_LIST_DIR}/explain_cli_test.cpp)
target_link_libraries(explain_cli_test PRIVATE npt_cli GTest::gtest_main)
target_compile_definitions(explain_cli_test PRIVATE NPT_EXAMPLES_DIR="${NPT_EXAMPLES_DIR}"
                                                   NPT_FIXTURES_DIR="${NPT_FIXTURES_DIR}")
gtest_discover_tests(explain_cli_test)

# The binary itself: help exits 0 and describes the command; a usage error exits 2 with one line naming what is
# wrong and one saying where the usage is, nothing on stdout.
add_test(NAME cli_help COMMAND netpol-trace explain --help)
set_tests_properties(cli_help PROPERTIES PASS_REGULAR_EXPRESSION "Usage: netpol-trace explain.*--from")
add_test(NAME cli_unknown_flag COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/usage_error_test.sh
         $<TARGET_FILE:netpol-trace> --bogus explain --bogus)
add_test(NAME cli_unknown_command COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/usage_error_test.sh
         $<TARGET_FILE:netpol-trace> bogus bogus)
add_test(NAME cli_flag_without_value COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/usage_error_test.sh
         $<TARGET_FILE:netpol-trace> --port explain --from a/b --port)
