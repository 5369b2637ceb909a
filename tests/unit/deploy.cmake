add_executable(deploy_manifest_test ${CMAKE_CURRENT_LIST_DIR}/deploy_manifest_test.cpp)
target_link_libraries(deploy_manifest_test PRIVATE npt_k8s yaml-cpp GTest::gtest_main)
target_compile_definitions(deploy_manifest_test PRIVATE NPT_DEPLOY_DIR="${PROJECT_SOURCE_DIR}/deploy")
gtest_discover_tests(deploy_manifest_test)
