# whatif as a pipeline runs it: the binary over a 10,000-pod state, a 100-policy change and 100,000 observed
# connections. Prints figures; run by hand (not a CTest test).
add_executable(whatif_bench ${CMAKE_CURRENT_LIST_DIR}/whatif_bench.cpp)
target_link_libraries(whatif_bench PRIVATE npt_policy)
target_compile_definitions(whatif_bench PRIVATE NPT_BINARY="$<TARGET_FILE:netpol-trace>")
add_dependencies(whatif_bench netpol-trace)
