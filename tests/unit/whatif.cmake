# whatif and advise: which observed connections a policy change breaks, and advised policies that break none.
add_executable(whatif_test ${CMAKE_CURRENT_LIST_DIR}/whatif_test.cpp)
target_link_libraries(whatif_test PRIVATE npt_policy GTest::gtest_main)
target_compile_definitions(whatif_test PRIVATE NPT_EXAMPLES_DIR="${NPT_EXAMPLES_DIR}")
gtest_discover_tests(whatif_test)

# The commands: exit statuses, JSON contracts, manifests from directories, bad input.
add_executable(whatif_cli_test ${CMAKE_CURRENT_LIST_DIR}/whatif_cli_test.cpp)
target_link_libraries(whatif_cli_test PRIVATE npt_cli GTest::gtest_main)
target_compile_definitions(whatif_cli_test PRIVATE NPT_EXAMPLES_DIR="${NPT_EXAMPLES_DIR}")
gtest_discover_tests(whatif_cli_test)
add_test(NAME cli_whatif_help COMMAND netpol-trace whatif --help)
add_test(NAME cli_advise_needs_namespace COMMAND netpol-trace advise --flows x)
set_tests_properties(cli_advise_needs_namespace PROPERTIES WILL_FAIL TRUE)
