# Unit test of the kernel matrix's Debian package handling (scripts/kernel-matrix.d/debian.sh) on recorded archive
# output: no download, no root. The matrix itself is tests/integration/kernel_matrix.cmake.
add_test(NAME kernel_matrix_debian_test COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/kernel_matrix_debian_test.sh)
