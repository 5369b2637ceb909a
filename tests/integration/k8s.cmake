# Integration tests of the Kubernetes API room against the fake API server (tests/fake-apiserver), each test
# with its own server on a free loopback port. No root, no network beyond 127.0.0.1: not labelled `root`.
if(NOT TARGET npt_k8s)
  return()
endif()
find_program(NPT_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
find_program(NPT_PYTHON3 NAMES python3)
foreach(name k8s_informer_test k8s_auth_test)
  add_executable(${name} ${CMAKE_CURRENT_LIST_DIR}/${name}.cpp)
  target_link_libraries(${name} PRIVATE npt_k8s npt_policy GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests/fake-apiserver ${CMAKE_CURRENT_LIST_DIR})
  target_compile_definitions(${name} PRIVATE NPT_PYTHON3="${NPT_PYTHON3}"
                                             NPT_FAKE_APISERVER_DIR="${PROJECT_SOURCE_DIR}/tests/fake-apiserver"
                                             NPT_TEST_CERT_CACHE="${CMAKE_BINARY_DIR}/k8s-test-certs")
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 60 LABELS k8s)
endforeach()
# The CLI with only a kubeconfig.
pkg_check_modules(NPT_TEST_HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)  # an agent stand-in
add_executable(k8s_cli_test ${CMAKE_CURRENT_LIST_DIR}/k8s_cli_test.cpp)
target_link_libraries(k8s_cli_test PRIVATE npt_cli GTest::gtest_main PkgConfig::NPT_TEST_HTTPLIB)
target_include_directories(k8s_cli_test PRIVATE ${PROJECT_SOURCE_DIR}/tests/fake-apiserver ${CMAKE_CURRENT_LIST_DIR})
target_compile_definitions(k8s_cli_test PRIVATE NPT_PYTHON3="${NPT_PYTHON3}"
                                            NPT_FAKE_APISERVER_DIR="${PROJECT_SOURCE_DIR}/tests/fake-apiserver"
                                            NPT_TEST_CERT_CACHE="${CMAKE_BINARY_DIR}/k8s-test-certs"
                                            NPT_EXAMPLES_DIR="${NPT_EXAMPLES_DIR}")
gtest_discover_tests(k8s_cli_test DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 60 LABELS k8s)
