# The cluster policy tiers (ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy) as the
# policy API's types and docs state them, through manifests in tests/fixtures/cluster-policy.
add_executable(cluster_policy_engine_test ${CMAKE_CURRENT_LIST_DIR}/cluster_policy_engine_test.cpp)
target_link_libraries(cluster_policy_engine_test PRIVATE npt_output GTest::gtest_main)
target_compile_definitions(cluster_policy_engine_test PRIVATE
  NPT_CLUSTER_POLICY_FIXTURES="${PROJECT_SOURCE_DIR}/tests/fixtures/cluster-policy")
gtest_discover_tests(cluster_policy_engine_test)
