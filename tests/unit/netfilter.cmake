# userspace/netfilter without root or kernel: packet parsing, the RecentPackets join table, trace assembly from
# synthetic messages, rule comments from libnftnl rule objects.
add_executable(netfilter_unit_test ${CMAKE_CURRENT_LIST_DIR}/netfilter_unit_test.cpp)
target_link_libraries(netfilter_unit_test PRIVATE npt_netfilter PkgConfig::NPT_NFTNL GTest::gtest_main)
gtest_discover_tests(netfilter_unit_test)

# Conntrack events (working UDP/SCTP flows) from messages libnetfilter_conntrack builds.
add_executable(conntrack_test ${CMAKE_CURRENT_LIST_DIR}/conntrack_test.cpp)
target_link_libraries(conntrack_test PRIVATE npt_netfilter PkgConfig::NPT_CONNTRACK PkgConfig::NPT_MNL GTest::gtest_main)
gtest_discover_tests(conntrack_test)
