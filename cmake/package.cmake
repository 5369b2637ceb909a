# `cmake --install` and the Debian package (cpack -G DEB): the binary and its kubectl names
# (userspace/cli/CMakeLists.txt), the man page, the bash completion and the examples the README uses.
include(GNUInstallDirs)

# Debian installs man pages compressed; -n keeps the archive free of the build's time and file name.
set(npt_man_gz ${PROJECT_BINARY_DIR}/man/netpol-trace.1.gz)
add_custom_command(
  OUTPUT ${npt_man_gz} ${PROJECT_BINARY_DIR}/man/kubectl-netpol_trace.1.gz
  COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
  COMMAND sh -c "gzip -9n -c '${PROJECT_SOURCE_DIR}/docs/netpol-trace.1' > '${npt_man_gz}'"
  COMMAND ${CMAKE_COMMAND} -E create_symlink netpol-trace.1.gz ${PROJECT_BINARY_DIR}/man/kubectl-netpol_trace.1.gz
  DEPENDS ${PROJECT_SOURCE_DIR}/docs/netpol-trace.1
  VERBATIM)
add_custom_target(npt_man ALL DEPENDS ${npt_man_gz})
install(FILES ${npt_man_gz} ${PROJECT_BINARY_DIR}/man/kubectl-netpol_trace.1.gz
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_SOURCE_DIR}/examples/runbook-cluster.yaml ${PROJECT_SOURCE_DIR}/examples/cluster-policies.yaml
              ${PROJECT_SOURCE_DIR}/examples/runbook-probes.jsonl ${PROJECT_SOURCE_DIR}/examples/runbook-flows.jsonl
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME netpol-trace)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "which Kubernetes NetworkPolicy dropped a packet, and why")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "which Kubernetes NetworkPolicy dropped a packet, and why\n"
    "For every packet a Kubernetes node drops, netpol-trace names the policy that dropped it and why the\n"
    "policy that looks right does not allow it. It captures drops with a CO-RE eBPF program, explains\n"
    "connections offline (explain), checks policy changes (whatif), writes least-privilege policies\n"
    "(advise), runs as the node agent of a DaemonSet, and as the kubectl plugin `kubectl netpol-trace`.")
set(CPACK_PACKAGE_CONTACT "netpol-trace developers")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # netpol-trace_0.1.0_amd64.deb
# Depends from the binary's DT_NEEDED entries, through dpkg-shlibdeps: the library packages at the versions
# this build linked against.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "kubectl")
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
include(CPack)
