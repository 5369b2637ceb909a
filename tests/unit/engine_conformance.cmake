# Conformance suite for the policy engine: NetworkPolicy (networking.k8s.io/v1) semantics as the
# Kubernetes documentation, API reference and upstream e2e tests state them, checked through
# explain_query / explain_flow / evaluate. engine_conformance_test.cpp builds its clusters in C++
# (independent of the loader); engine_conformance_yaml_test.cpp covers the API server defaulting
# (policyTypes, protocol) through manifests in tests/fixtures/conformance.
add_executable(engine_conformance_test
  ${CMAKE_CURRENT_LIST_DIR}/engine_conformance_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/engine_conformance_yaml_test.cpp)
target_link_libraries(engine_conformance_test PRIVATE npt_output GTest::gtest_main)
target_compile_definitions(engine_conformance_test PRIVATE
  NPT_CONFORMANCE_FIXTURES="${PROJECT_SOURCE_DIR}/tests/fixtures/conformance")
gtest_discover_tests(engine_conformance_test)
