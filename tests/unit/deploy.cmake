# deploy/: the manifests, the kustomization and its components, the agent's NetworkPolicy evaluated by the
# engine, and the Dockerfile's runtime packages against the libraries the built binary links; `kubectl kustomize`
# builds the default install and every component (without kubectl those tests skip, and fail under CI=true).
add_executable(deploy_manifest_test ${CMAKE_CURRENT_LIST_DIR}/deploy_manifest_test.cpp)
target_link_libraries(deploy_manifest_test PRIVATE npt_k8s npt_policy yaml-cpp GTest::gtest_main)
add_dependencies(deploy_manifest_test netpol-trace)  # the Dockerfile check reads its DT_NEEDED entries
target_compile_definitions(deploy_manifest_test PRIVATE
  NPT_DEPLOY_DIR="${PROJECT_SOURCE_DIR}/deploy"
  NPT_PROJECT_VERSION="${PROJECT_VERSION}"
  NPT_BINARY="$<TARGET_FILE:netpol-trace>")
find_program(NPT_KUBECTL kubectl)
if(NOT NPT_KUBECTL)
  message(WARNING "kubectl not found: the kustomize tests of deploy/ will skip (and fail under CI=true)")
  set(NPT_KUBECTL "")
endif()
target_compile_definitions(deploy_manifest_test PRIVATE NPT_KUBECTL="${NPT_KUBECTL}")
gtest_discover_tests(deploy_manifest_test DISCOVERY_TIMEOUT 30 PROPERTIES LABELS deploy TIMEOUT 120)
