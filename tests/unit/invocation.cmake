# The kubectl plugin's names, kubectl's flags and shell completion (cli/invocation.hpp).
add_executable(invocation_test ${CMAKE_CURRENT_LIST_DIR}/invocation_test.cpp)
target_link_libraries(invocation_test PRIVATE npt_cli GTest::gtest_main)
gtest_discover_tests(invocation_test)

# The man page documents every command and long option of the binary.
add_test(NAME man_page_options COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/man_page_test.sh $<TARGET_FILE:netpol-trace>
                                       ${PROJECT_SOURCE_DIR}/docs/netpol-trace.1)
