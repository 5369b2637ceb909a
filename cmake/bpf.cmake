# BPF build helper: turns bpf/<name>.bpf.c into a libbpf skeleton header exposed as an INTERFACE target, the way
# libbpf-bootstrap does it.
#
#   include(${PROJECT_SOURCE_DIR}/cmake/bpf.cmake)
#   npt_bpf_skeleton(drop SOURCE ${PROJECT_SOURCE_DIR}/bpf/drop.bpf.c)
#   target_link_libraries(mylib PRIVATE npt_drop_skel)   # then: #include "drop.skel.h"
#
# Pipeline: clang -target bpf -g -O2 (CO-RE against the committed bpf/vmlinux/<arch>/vmlinux.h) -> bpftool gen
# object (links and drops DWARF, keeps BTF) -> bpftool gen skeleton.
include_guard(GLOBAL)

find_program(NPT_BPF_CLANG NAMES clang clang-18 clang-17 clang-16 clang-15 clang-14 REQUIRED
             DOC "clang able to target BPF")
find_program(NPT_BPFTOOL NAMES bpftool PATHS /usr/sbin /usr/local/sbin /sbin REQUIRED DOC "bpftool (gen skeleton)")
find_package(PkgConfig REQUIRED)
pkg_check_modules(NPT_LIBBPF REQUIRED IMPORTED_TARGET GLOBAL libbpf>=1.0)

# Cache variables: this file is included once (include_guard) but used from several directories.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(NPT_BPF_ARCH x86 CACHE INTERNAL "")
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
  set(NPT_BPF_ARCH arm64 CACHE INTERNAL "")
else()
  message(FATAL_ERROR "npt_bpf_skeleton: no vmlinux.h for ${CMAKE_SYSTEM_PROCESSOR}")
endif()
set(NPT_BPF_VMLINUX_DIR ${PROJECT_SOURCE_DIR}/bpf/vmlinux/${NPT_BPF_ARCH} CACHE INTERNAL "")
if(NOT EXISTS ${NPT_BPF_VMLINUX_DIR}/vmlinux.h)
  message(FATAL_ERROR "npt_bpf_skeleton: ${NPT_BPF_VMLINUX_DIR}/vmlinux.h is missing "
                      "(generate it with bpf/vmlinux/update-vmlinux-h)")
endif()

# libbpf's BPF-side headers (bpf_helpers.h, ...) come with libbpf-dev.
find_path(NPT_LIBBPF_BPF_INCLUDE_DIR bpf/bpf_helpers.h HINTS ${NPT_LIBBPF_INCLUDE_DIRS} REQUIRED)
set(NPT_BPF_INCLUDE_DIR ${PROJECT_SOURCE_DIR}/include CACHE INTERNAL "")

# npt_bpf_skeleton(<name> SOURCE <file.bpf.c> [INCLUDES dir...])
# Creates target npt_<name>_skel (INTERFACE) providing "<name>.skel.h" and linking libbpf.
function(npt_bpf_skeleton name)
  cmake_parse_arguments(ARG "" "SOURCE" "INCLUDES" ${ARGN})
  if(NOT ARG_SOURCE)
    message(FATAL_ERROR "npt_bpf_skeleton(${name}): SOURCE is required")
  endif()
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/bpf_skel)
  set(obj ${out_dir}/${name}.bpf.o)
  set(linked ${out_dir}/${name}.linked.o)
  set(skel ${out_dir}/${name}.skel.h)
  set(include_flags -I${NPT_BPF_INCLUDE_DIR} -I${NPT_BPF_VMLINUX_DIR})
  if(NOT NPT_LIBBPF_BPF_INCLUDE_DIR STREQUAL "/usr/include")
    list(APPEND include_flags -I${NPT_LIBBPF_BPF_INCLUDE_DIR})  # clang searches /usr/include already
  endif()
  file(GLOB shared_headers CONFIGURE_DEPENDS ${NPT_BPF_INCLUDE_DIR}/netpol_trace/*.h)
  foreach(dir IN LISTS ARG_INCLUDES)
    list(APPEND include_flags -I${dir})
  endforeach()

  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND ${NPT_BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${NPT_BPF_ARCH} -Wall -Wextra -Werror
            ${include_flags} -MD -MF ${obj}.d -MT ${skel} -c ${ARG_SOURCE} -o ${obj}
    COMMAND ${NPT_BPFTOOL} gen object ${linked} ${obj}
    COMMAND sh -c "'${NPT_BPFTOOL}' gen skeleton '${linked}' name ${name} > '${skel}.tmp' && mv '${skel}.tmp' '${skel}'"
    # The depfile names the skeleton (-MT): Makefile generators only apply it to the command's OUTPUT. The shared
    # headers are listed as well so a layout change always regenerates the skeleton.
    DEPENDS ${ARG_SOURCE} ${NPT_BPF_VMLINUX_DIR}/vmlinux.h ${shared_headers}
    DEPFILE ${obj}.d
    COMMENT "BPF skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(npt_${name}_skel_gen DEPENDS ${skel})

  add_library(npt_${name}_skel INTERFACE)
  target_include_directories(npt_${name}_skel INTERFACE ${out_dir} ${NPT_BPF_INCLUDE_DIR})
  target_link_libraries(npt_${name}_skel INTERFACE PkgConfig::NPT_LIBBPF)
  add_dependencies(npt_${name}_skel npt_${name}_skel_gen)
endfunction()
