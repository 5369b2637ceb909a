add_executable(engine_units_test ${CMAKE_CURRENT_LIST_DIR}/near_miss_test.cpp ${CMAKE_CURRENT_LIST_DIR}/drop_record_test.cpp ${CMAKE_CURRENT_LIST_DIR}/drop_text_test.cpp
               ${CMAKE_CURRENT_LIST_DIR}/cni_naming_test.cpp ${CMAKE_CURRENT_LIST_DIR}/live_table_test.cpp
               ${CMAKE_CURRENT_LIST_DIR}/miss_text_test.cpp ${CMAKE_CURRENT_LIST_DIR}/ip_addr_test.cpp)
target_link_libraries(engine_units_test PRIVATE npt_output npt_state GTest::gtest_main)
target_compile_definitions(engine_units_test PRIVATE NPT_EXAMPLES_DIR="${NPT_EXAMPLES_DIR}"
                                                     NPT_FIXTURES_DIR="${NPT_FIXTURES_DIR}")
gtest_discover_tests(engine_units_test)
