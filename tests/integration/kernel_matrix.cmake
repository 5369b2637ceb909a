# The kernel matrix (scripts/kernel-matrix): Debian's current 5.10, 6.1, 6.12 and newest (7.x) kernels booted under
# qemu (TCG) with this build's netpol-trace and npt_capture_tool in an initramfs, the drop scenarios run in network
# namespaces inside each guest. Included from tests/integration/CMakeLists.txt.
#   npt_kernel_matrix  labels root, kernel-matrix: a kernel that cannot be fetched is a skip inside the matrix (its
#                      row says SKIPPED), a scenario failing on a booted kernel fails the test; under CI=true a run
#                      in which no kernel booted fails too
# Run it alone: ctest -L kernel-matrix. It downloads ~120 MB of kernels once (cached in <repo>/.cache/kernel-matrix,
# or $NPT_KERNEL_CACHE) and takes 2-3 minutes on 2 cores.
if(NOT TARGET npt_capture)
  return()  # NPT_BUILD_BPF=OFF: no capture to test
endif()

add_test(NAME npt_kernel_matrix
         COMMAND ${PROJECT_SOURCE_DIR}/scripts/kernel-matrix --binary $<TARGET_FILE:netpol-trace>
                 --capture-tool $<TARGET_FILE:npt_capture_tool>)
# The guests are CPU-bound (TCG): nothing else at the same time.
set_tests_properties(npt_kernel_matrix PROPERTIES LABELS "root;kernel-matrix" RUN_SERIAL TRUE TIMEOUT 900)
