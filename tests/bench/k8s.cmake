# Informer benchmark (prints figures, asserts nothing): k8s_sync_bench [--pods N] [--policies N] [--events N].
if(NOT TARGET npt_k8s)
  return()
endif()
find_program(NPT_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
find_program(NPT_PYTHON3 NAMES python3)
add_executable(k8s_sync_bench ${CMAKE_CURRENT_LIST_DIR}/k8s_sync_bench.cpp)
target_link_libraries(k8s_sync_bench PRIVATE npt_k8s)
target_include_directories(k8s_sync_bench PRIVATE ${PROJECT_SOURCE_DIR}/tests/fake-apiserver)
target_compile_definitions(k8s_sync_bench PRIVATE NPT_PYTHON3="${NPT_PYTHON3}"
                                                  NPT_FAKE_APISERVER_DIR="${PROJECT_SOURCE_DIR}/tests/fake-apiserver"
                                                  NPT_TEST_CERT_CACHE="${CMAKE_BINARY_DIR}/k8s-test-certs")
