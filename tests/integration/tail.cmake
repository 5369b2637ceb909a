# Tests of the live tail on the network-namespace lab (scripts/lab). Included from tests/integration/CMakeLists.txt.
#   npt_tail_dataplane_<flavour>  root: every runbook case, IPv4 and IPv6, through one CNI flavour of the lab
#   npt_tail_scope_test           root: --namespace, --pod and the kernel IP filter keep other drops out
#   npt_tail_live_view_test       root: the live view on a pseudo-terminal: Enter opens a flow's explanation
#   npt_tail_teardown_test        root: a failing test and scripts/lab down leave nothing behind
#   npt_tail_nonroot_test         the tail without privileges: one line, exit 1
#   npt_tail_rule_trace_test      root: --rule-trace and --nflog-group name the rule (kube-router, Calico, legacy)
#   npt_tail_rule_versions_<cni>  root: --rule-trace on every version of kube-router's and Calico's rulesets
#   npt_lab_naming_test           the lab's CNI names against those of the CNIs' own tests
#   npt_tail_cluster_policy_test  root: kube-network-policies' NFQUEUE verdicts and the ClusterNetworkPolicy tiers
#   npt_agent_test                root: the agent (events, metrics, Prometheus) and the cluster-wide tail
#   npt_flows_test                root: the working connections (agent /flows, `flows`, journal, bounds)
#   npt_apply_lab_test            root: explain --fix and advise, applied to the lab's dataplane, proven by traffic
# The tests are Python 3 scripts (standard library only) run by /usr/bin/python3. Not root: exit 77 (skipped), except
# under CI=true, where they fail.
if(NOT TARGET npt_capture)
  return()  # NPT_BUILD_BPF=OFF: no tail
endif()

set(NPT_TAIL_PYTHON /usr/bin/python3)

# The lab's eBPF-CNI dataplane program, built with the project so a compile error shows in the build.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
  set(npt_lab_arch arm64)
else()
  set(npt_lab_arch x86)
endif()
set(NPT_LAB_TC_OBJ ${CMAKE_CURRENT_BINARY_DIR}/lab_tc_deny.bpf.o)
add_custom_command(
  OUTPUT ${NPT_LAB_TC_OBJ}
  COMMAND ${NPT_BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${npt_lab_arch} -Wall -Wextra -Werror
          -I${PROJECT_SOURCE_DIR}/bpf/vmlinux/${npt_lab_arch} -I${NPT_LIBBPF_BPF_INCLUDE_DIR}
          -c ${PROJECT_SOURCE_DIR}/bpf/lab_tc_deny.bpf.c -o ${NPT_LAB_TC_OBJ}
  DEPENDS ${PROJECT_SOURCE_DIR}/bpf/lab_tc_deny.bpf.c
  COMMENT "BPF object lab_tc_deny.bpf.o (the lab's tc dataplane)"
  VERBATIM)
add_custom_target(npt_lab_tc_deny ALL DEPENDS ${NPT_LAB_TC_OBJ})

set(npt_tail_env
    "NPT_BINARY=$<TARGET_FILE:netpol-trace>"
    "NPT_LAB=${PROJECT_SOURCE_DIR}/scripts/lab"
    "NPT_LAB_TC_OBJ=${NPT_LAB_TC_OBJ}")

# The BPF program sees every drop of the host and the labs share the host's CPU: one at a time.
function(npt_tail_test name timeout)
  add_test(NAME ${name} COMMAND ${NPT_TAIL_PYTHON} ${ARGN})
  set_tests_properties(${name} PROPERTIES LABELS root RUN_SERIAL TRUE TIMEOUT ${timeout} SKIP_RETURN_CODE 77
                                          ENVIRONMENT "${npt_tail_env}")
endfunction()

foreach(dataplane kube-router kube-router-legacy calico nftables tc pod)
  npt_tail_test(npt_tail_dataplane_${dataplane} 60 ${CMAKE_CURRENT_LIST_DIR}/tail_dataplane_test.py
                --dataplane ${dataplane})
endforeach()
# kube-network-policies (NFQUEUE verdicts from the lab's agent): the Admin, Pass and Baseline cases of the
# ClusterNetworkPolicy tiers, IPv4 and IPv6.
npt_tail_test(npt_tail_cluster_policy_test 60 ${CMAKE_CURRENT_LIST_DIR}/tail_cluster_policy_test.py)
npt_tail_test(npt_tail_scope_test 60 ${CMAKE_CURRENT_LIST_DIR}/tail_scope_test.py)
npt_tail_test(npt_tail_live_view_test 60 ${CMAKE_CURRENT_LIST_DIR}/tail_live_view_test.py)
npt_tail_test(npt_tail_teardown_test 90 ${CMAKE_CURRENT_LIST_DIR}/tail_teardown_test.py)
npt_tail_test(npt_tail_nonroot_test 30 ${CMAKE_CURRENT_LIST_DIR}/tail_nonroot_test.py)
npt_tail_test(npt_tail_kubeconfig_test 90 ${CMAKE_CURRENT_LIST_DIR}/tail_kubeconfig_test.py)
# The node agent (HTTP, metrics, Prometheus scrape) and the cluster-wide tail through the pod proxy.
npt_tail_test(npt_agent_test 180 ${CMAKE_CURRENT_LIST_DIR}/agent_test.py)
# --rule-trace and --nflog-group on kube-router (k3s NFLOG), Calico and iptables-legacy rulesets; the trace table's
# cleanup after exit and SIGKILL.
npt_tail_test(npt_tail_rule_trace_test 240 ${CMAKE_CURRENT_LIST_DIR}/tail_rule_trace_test.py)
# The rule object (chain, handle, comments, pod, direction, policy, evaluated policies, version guess) on each version
# of kube-router (v1.6, v2.0-v2.11), Calico (v3.26-v3.32) and Calico's nftables dataplane (v3.29-v3.32), one lab per
# version: about 35, 25 and 15 s.
add_test(NAME npt_lab_naming_test COMMAND ${NPT_TAIL_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/lab_naming_test.py)
foreach(cni kube-router calico calico-nft)
  npt_tail_test(npt_tail_rule_versions_${cni} 240 ${CMAKE_CURRENT_LIST_DIR}/tail_rule_versions_test.py --cni ${cni})
endforeach()
# The working connections: the agent's recorder (TCP states, conntrack), /flows, `flows` through the pod proxy,
# the journal across a restart, the table's bounds under a burst of 50,000 connections.
npt_tail_test(npt_flows_test 240 ${CMAKE_CURRENT_LIST_DIR}/flows_test.py)
# A fix and advised policies, applied to the lab's dataplane (scripts/lab up --policies) and proven with traffic.
npt_tail_test(npt_apply_lab_test 240 ${CMAKE_CURRENT_LIST_DIR}/apply_lab_test.py)

# The tests whose binary runs several threads (the agent's HTTP workers, informers and capture loop; the tail's
# informer beside its capture): scripts/test runs them again with a ThreadSanitizer build (label threads).
set_tests_properties(npt_agent_test npt_tail_kubeconfig_test PROPERTIES LABELS "root;threads")
