# Tests of the nftables rule tracer and the NFLOG listener (userspace/netfilter). Included from
# tests/integration/CMakeLists.txt.
#   npt_netfilter_netns_test  root (label "root"): real nftables/iptables-nft rules and NFLOG groups inside a
#                             private network namespace per test; skipped without root, failed instead under CI=true
add_executable(npt_netfilter_netns_test ${CMAKE_CURRENT_LIST_DIR}/netfilter_netns_test.cpp)
target_link_libraries(npt_netfilter_netns_test PRIVATE npt_netfilter GTest::gtest_main Threads::Threads)
add_test(NAME npt_netfilter_netns_test COMMAND npt_netfilter_netns_test)
# Everything lives in the tests' own namespaces, but the tests change the process's network namespace and
# load nf_tables modules: run alone.
set_tests_properties(npt_netfilter_netns_test PROPERTIES LABELS root RUN_SERIAL TRUE TIMEOUT 300)
