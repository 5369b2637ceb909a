# explain --probes as scripts and CI gates run it: the binary over a 10,000-pod state and N probes, next to the
# bare engine's evaluations of the same probes. Prints figures; run by hand (not a CTest test).
add_executable(probes_bench ${CMAKE_CURRENT_LIST_DIR}/probes_bench.cpp)
target_link_libraries(probes_bench PRIVATE npt_policy)
target_compile_definitions(probes_bench PRIVATE NPT_BINARY="$<TARGET_FILE:netpol-trace>")
add_dependencies(probes_bench netpol-trace)
