# Loading --state: a generated 100,000-pod kubectl List through simdjson and the decoders, then
# ClusterState::build. Prints figures; run by hand (not a CTest test).
add_executable(state_load_bench ${CMAKE_CURRENT_LIST_DIR}/state_load_bench.cpp)
target_link_libraries(state_load_bench PRIVATE npt_state)
