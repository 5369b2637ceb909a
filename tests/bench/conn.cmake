# The cost of recording working connections: TCP connections/s between two network namespaces with and without the
# agent, interleaved, and the TCP program's BPF time per state change. Root; prints figures; run by hand.
if(TARGET npt_capture)
  add_executable(conn_bench ${CMAKE_CURRENT_LIST_DIR}/conn_bench.cpp)
  target_link_libraries(conn_bench PRIVATE PkgConfig::NPT_LIBBPF fmt::fmt Threads::Threads)
  target_compile_definitions(conn_bench PRIVATE NPT_BINARY="$<TARGET_FILE:netpol-trace>")
  add_dependencies(conn_bench netpol-trace)
endif()
