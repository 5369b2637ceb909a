# Offline replay of the upstream network-policy-api conformance suite (kubernetes-sigs/network-policy-api):
# ClusterNetworkPolicy Admin/Baseline tiers (branch main) and v1alpha1 AdminNetworkPolicy /
# BaselineAdminNetworkPolicy (branch release-0.1), one test case per upstream probe, against the
# conformance cluster in tests/fixtures/cluster-policy-conformance (format: its README.md).
add_executable(cluster_policy_conformance_test ${CMAKE_CURRENT_LIST_DIR}/cluster_policy_conformance_test.cpp)
target_link_libraries(cluster_policy_conformance_test PRIVATE npt_policy yaml-cpp GTest::gtest_main)
target_compile_definitions(cluster_policy_conformance_test PRIVATE
  NPT_CLUSTER_POLICY_CONFORMANCE_FIXTURES="${PROJECT_SOURCE_DIR}/tests/fixtures/cluster-policy-conformance")
# One CTest entry for the whole suite: every case parses all the fixtures when its process starts, so one process per
# case (gtest_discover_tests) cost 700 x that parse, more than half of the sanitizer tree's unit stage. A failure
# still names the case, its upstream test and subtest in the output.
add_test(NAME cluster_policy_conformance COMMAND cluster_policy_conformance_test)
