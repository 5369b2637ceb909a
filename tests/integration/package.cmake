# The Debian package (cpack -G DEB) installed with apt-get, and the kubectl plugin and completions it installs.
#   npt_package_test  labels root, package: builds, installs, runs and purges netpol-trace_<version>_<arch>.deb
# Its own stage in scripts/test (it installs into the machine's /usr, then removes it).
add_test(NAME npt_package_test COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/package_test.py)
set_tests_properties(npt_package_test PROPERTIES
  LABELS "root;package" RUN_SERIAL TRUE TIMEOUT 600 SKIP_RETURN_CODE 77
  ENVIRONMENT "NPT_BUILD_DIR=${PROJECT_BINARY_DIR};NPT_BINARY=$<TARGET_FILE:netpol-trace>")
