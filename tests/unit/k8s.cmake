# Unit tests of the Kubernetes API room (userspace/k8s): kubeconfig, loading rules, credentials, errors,
# decoding and the informer store. No API server; the exec plugin tests run tests/fake-apiserver/exec_plugin.py.
if(NOT TARGET npt_k8s)
  return()
endif()
find_program(NPT_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
find_program(NPT_PYTHON3 NAMES python3)
foreach(name k8s_config_test k8s_store_test)
  add_executable(${name} ${CMAKE_CURRENT_LIST_DIR}/${name}.cpp)
  target_link_libraries(${name} PRIVATE npt_k8s GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests/fake-apiserver)
  target_compile_definitions(${name} PRIVATE NPT_PYTHON3="${NPT_PYTHON3}"
                                             NPT_FAKE_APISERVER_DIR="${PROJECT_SOURCE_DIR}/tests/fake-apiserver"
                                             NPT_TEST_CERT_CACHE="${CMAKE_BINARY_DIR}/k8s-test-certs")
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 30)
endforeach()
