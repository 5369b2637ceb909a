# shellcheck shell=sh
# Scenarios of a kernel-matrix guest, sourced by /init (busybox sh). The same kinds of drops the host's
# integration tests make in network namespaces (tests/integration/tail_dataplane_test.py): an nftables DROP and
# REJECT in a node's FORWARD hook, a tc ingress drop on a pod's host veth, IPv6, iptables-legacy; then the
# capture's fallback attach modes. One tail run covers the drop scenarios: start it, send every scenario's
# traffic, stop it, then check each scenario's flow on the tail's JSON lines.
#
#   client 10.1.0.2 fd00:1::2 ─┐                   ┌─ server 10.2.0.2 fd00:2::2
#   tcpod  10.3.0.2 ───────────┴─ node (forwarding, ├─ (tc ingress drop on the node's end of tcpod's veth)
#                                 conntrack, nft)   │
#   lclient 10.4.0.2 ─── lnode (iptables-legacy) ─── lserver 10.5.0.2
#
# Expectations follow the running kernel, not the tracer: a drop reason exists from 5.17 on (before, the tail
# must say "unknown" and still name the enforcement point from the stack); tp_btf exists on every kernel with BTF.

IP=/matrix/bin/ip
TC=/matrix/bin/tc
NFT=/matrix/bin/nft
IPT=/matrix/bin/iptables-legacy
NPT=/matrix/bin/netpol-trace
TOOL=/matrix/bin/npt_capture_tool
SEND=/matrix/bin/npt-send
COUNT=3
STORM=/matrix/bin/storm
ALL_SCENARIOS="hook nft-drop nft-reject tc-drop ipv6 iptables-legacy rule-nft rule-jump rule-legacy rule-trace fallback-raw_tp fallback-tracepoint"
# Not run unless asked for (npt.scenarios=...,fexit-cost): the cost of rule attribution under a drop storm.
EXTRA_SCENARIOS="fexit-cost"

result() { # scenario PASS|FAIL|SKIP detail...
    s=$1 v=$2
    shift 2
    say "RESULT $s $v $*"
}

wanted() {
    if [ -z "$WANT_SCENARIOS" ]; then
        case " $EXTRA_SCENARIOS " in *" $1 "*) return 1 ;; esac
        return 0
    fi
    for w in $WANT_SCENARIOS; do [ "$w" = "$1" ] && return 0; done
    return 1
}

kernel_at_least() { # MAJOR MINOR
    r=$(uname -r)
    maj=${r%%.*}
    rest=${r#*.}
    min=${rest%%[!0-9]*}
    [ "$maj" -gt "$1" ] || { [ "$maj" -eq "$1" ] && [ "$min" -ge "$2" ]; }
}

# The reason the tail must print for a drop whose kernel reason is $1.
reason_for() {
    if kernel_at_least 5 17; then echo "$1"; else echo unknown; fi
}

in_ns() { # NETNS CMD...
    ns=$1
    shift
    nsenter --net=/run/netns/"$ns" "$@"
}

# veth between two namespaces: NS_A IF_A NS_B IF_B
veth() {
    $IP link add "$2" netns "$1" type veth peer name "$4" netns "$3" || return 1
    in_ns "$1" $IP link set "$2" up && in_ns "$3" $IP link set "$4" up
}

topology() {
    for ns in node client server tcpod lnode lclient lserver; do
        $IP netns add $ns || return 1
        in_ns $ns $IP link set lo up
    done
    veth client eth0 node vc && veth server eth0 node vs && veth tcpod eth0 node vt || return 1
    veth lclient eth0 lnode vc && veth lserver eth0 lnode vs || return 1
    for ns in node lnode; do
        in_ns $ns sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 >/dev/null || return 1
    done
    # Pods: an address, a default route via the node.
    pod() { # NS IPV4 GW4 [IPV6 GW6]
        in_ns "$1" $IP addr add "$2/24" dev eth0 && in_ns "$1" $IP route add default via "$3" || return 1
        if [ -n "${4:-}" ]; then
            in_ns "$1" $IP -6 addr add "$4/64" dev eth0 nodad &&
                in_ns "$1" $IP -6 route add default via "$5" || return 1
        fi
    }
    pod client 10.1.0.2 10.1.0.1 fd00:1::2 fd00:1::1 || return 1
    pod server 10.2.0.2 10.2.0.1 fd00:2::2 fd00:2::1 || return 1
    pod tcpod 10.3.0.2 10.3.0.1 || return 1
    pod lclient 10.4.0.2 10.4.0.1 || return 1
    pod lserver 10.5.0.2 10.5.0.1 || return 1
    in_ns node $IP addr add 10.1.0.1/24 dev vc && in_ns node $IP -6 addr add fd00:1::1/64 dev vc nodad &&
        in_ns node $IP addr add 10.2.0.1/24 dev vs && in_ns node $IP -6 addr add fd00:2::1/64 dev vs nodad &&
        in_ns node $IP addr add 10.3.0.1/24 dev vt || return 1
    in_ns lnode $IP addr add 10.4.0.1/24 dev vc && in_ns lnode $IP addr add 10.5.0.1/24 dev vs || return 1
}

# The node's dataplane: one nftables table (conntrack in use, as on real nodes), a tc drop, iptables-legacy.
dataplane() {
    in_ns node $NFT -f - <<'EOF' || return 1
table inet npt_matrix {
    chain forward {
        type filter hook forward priority 0; policy accept;
        ct state established,related accept
        ip daddr 10.2.0.2 tcp dport 8080 drop comment "npt-matrix nft-drop"
        ip daddr 10.2.0.2 udp dport 5353 reject comment "npt-matrix nft-reject"
        ip6 daddr fd00:2::2 tcp dport 8443 drop comment "npt-matrix ipv6"
        ip daddr 10.2.0.2 udp dport 6000 jump npt_policy
        ip daddr 10.2.0.2 udp dport 4000-4999 drop comment "npt-matrix storm"
    }
    chain npt_policy {
        udp dport 6000 drop comment "default/deny-6000 policy"
    }
}
EOF
    # An eBPF CNI's drop, as the kernel sees it: TC_ACT_SHOT at the ingress of the pod's host veth.
    in_ns node $TC qdisc add dev vt ingress &&
        in_ns node $TC filter add dev vt ingress protocol ip prio 1 matchall action drop || return 1
    in_ns lnode $IPT -A FORWARD -p udp --dport 9000 -m comment --comment "npt-matrix iptables-legacy" -j DROP
}

# Sends one scenario's traffic; records what was sent in /tmp/sent.<scenario>.
send() { # SCENARIO NETNS PROTO ADDR PORT
    out=$(in_ns "$2" $SEND "$3" "$4" "$5" $COUNT 2>&1)
    echo "$out" >/tmp/sent."$1"
    case $out in "sent $COUNT errors 0") return 0 ;; esac
    return 1
}

traffic() {
    { wanted nft-drop || wanted rule-nft; } && send nft-drop client tcp 10.2.0.2 8080
    { wanted nft-reject || wanted rule-nft; } && send nft-reject client udp 10.2.0.2 5353
    wanted tc-drop && send tc-drop tcpod udp 10.2.0.2 7000
    { wanted ipv6 || wanted rule-nft; } && send ipv6 client tcp fd00:2::2 8443
    { wanted iptables-legacy || wanted rule-legacy; } && send iptables-legacy lclient udp 10.5.0.2 9000
    wanted rule-jump && send rule-jump client udp 10.2.0.2 6000
    return 0
}

# Checks the tail's lines of one flow: exactly one "drop" and one "summary" line, the summary counting every
# packet sent, and the drop line's fields equal to WANT (a JSON object; keys may be dotted paths).
check_flow() { # SCENARIO SRC DST PROTOCOL PORT WANT_JSON
    scenario=$1
    sent=$(cat /tmp/sent."$scenario" 2>/dev/null)
    case $sent in
        "sent $COUNT errors 0") ;;
        *) result "$scenario" FAIL "traffic: ${sent:-not sent}"; return ;;
    esac
    verdict=$(jq -n -r --arg s "$2" --arg d "$3" --arg p "$4" --argjson port "$5" --argjson want "$6" \
        --argjson count $COUNT '
        [inputs | select(.src.ip == $s and .dst.ip == $d and .protocol == $p and .port == $port)] as $all
        | ($all | map(select(.event == "drop"))) as $drops
        | ($all | map(select(.event == "summary"))) as $sums
        | [ (if ($drops | length) != 1 then "\($drops | length) drop lines, want 1" else empty end),
            (if ($sums | length) != 1 then "\($sums | length) summary lines, want 1" else empty end),
            (if ($sums | length) == 1 and $sums[0].count != $count
             then "summary count \($sums[0].count), want \($count)" else empty end),
            (if ($drops | length) == 1 then
                $drops[0] as $line
                | $want | to_entries[] | .key as $k | .value as $v
                | ($line | getpath($k | split("."))) as $got
                | select($got != $v)
                | "\($k)=\($got | tojson) want \($v | tojson)"
             else empty end) ]
        | if length == 0 then "PASS"
          else "FAIL " + join("; ") end' /tmp/tail.json 2>&1)
    case $verdict in
        PASS) result "$scenario" PASS "$(jq -n -r --arg s "$2" --arg d "$3" --argjson port "$5" '
            [inputs | select(.event == "summary" and .src.ip == $s and .dst.ip == $d and .port == $port)][0]
            | "\(.reason) \(.enforcement) \(.backend) ct=\(.ct_state) x\(.count)"
              + (if .rule then " rule=\(.rule.table)/\(.rule.chain)/\(.rule.handle) cni=\(.rule.cni) policy=\(.rule.policy)"
                 else "" end)' /tmp/tail.json)" ;;
        FAIL*) result "$scenario" FAIL "${verdict#FAIL }" ;;
        *) result "$scenario" FAIL "jq: $verdict" ;;
    esac
}

# The handle nft gave the rule with this comment in a chain of the node's table.
nft_handle() { # CHAIN COMMENT
    in_ns node $NFT -a list chain inet npt_matrix "$1" | sed -n "s|.*comment \"$2\" # handle \([0-9]*\)\$|\1|p"
}

# Rule attribution: the fexit programs load in every guest (the kernels allow BPF trampolines), and the tail's
# drop lines name the rule that returned the verdict. $1: the scenarios whose flows are checked.
check_rules() {
    status=$(sed -n 's/^netpol-trace: rule attribution: //p' /tmp/tail.err)
    if ! kernel_at_least 5 11; then
        # No module BTF before 5.11: fexit cannot reach the modular nf_tables/ip_tables; the tail says so and
        # its lines carry "rule": null.
        for s in "$@"; do
            case $status in
                off:*) cp /tmp/sent.nft-drop /tmp/sent."$s" 2>/dev/null
                    check_flow "$s" 10.1.0.2 10.2.0.2 TCP 8080 '{"rule":null}' >/tmp/rule.result
                    sed "s/\(RESULT $s PASS\).*/\1 off before 5.11 (${status#off: }): rule null/" /tmp/rule.result ;;
                *) result "$s" FAIL "rule attribution on a kernel without module BTF: ${status:-no --debug line}" ;;
            esac
        done
        return
    fi
    case $status in
        "fexit on "*nft_do_chain*) ;;
        *) for s in "$@"; do result "$s" FAIL "rule attribution: ${status:-no --debug line}"; done; return ;;
    esac
    drop=$(reason_for NETFILTER_DROP)
    h_drop=$(nft_handle forward "npt-matrix nft-drop")
    h_reject=$(nft_handle forward "npt-matrix nft-reject")
    h_ipv6=$(nft_handle forward "npt-matrix ipv6")
    h_jump=$(nft_handle npt_policy "default/deny-6000 policy")
    if wanted rule-nft && { [ -z "$h_drop" ] || [ -z "$h_reject" ] || [ -z "$h_ipv6" ]; }; then
        result rule-nft FAIL "nft -a list chain gave no handles: '$h_drop' '$h_reject' '$h_ipv6'"
    elif wanted rule-nft; then
        # Three flows, one scenario: each must name its own rule.
        for f in "nft-drop 10.1.0.2 10.2.0.2 TCP 8080 $h_drop npt-matrix nft-drop" \
            "nft-reject 10.1.0.2 10.2.0.2 UDP 5353 $h_reject npt-matrix nft-reject" \
            "ipv6 fd00:1::2 fd00:2::2 TCP 8443 $h_ipv6 npt-matrix ipv6"; do
            set -- $f
            cp /tmp/sent."$1" /tmp/sent.rule-nft 2>/dev/null
            comment=$(echo "$f" | cut -d' ' -f7-)
            check_flow rule-nft "$2" "$3" "$4" "$5" "{\"rule.table\":\"npt_matrix\",\"rule.chain\":\"forward\",
                \"rule.handle\":${6:-null},\"rule.comment\":\"$comment\",\"rule.cni\":null,\"rule.policy\":null,
                \"backend\":\"nftables\"}" >/tmp/rule-nft.result
            case $(cat /tmp/rule-nft.result) in
                *"RESULT rule-nft PASS"*) ;;
                *) sed "s/RESULT rule-nft FAIL /RESULT rule-nft FAIL $1: /" /tmp/rule-nft.result; rm -f /tmp/rule-nft.result; break ;;
            esac
        done
        [ -f /tmp/rule-nft.result ] && result rule-nft PASS "npt_matrix/forward handles $h_drop,$h_reject,$h_ipv6 with comments"
    fi
    wanted rule-jump && check_flow rule-jump 10.1.0.2 10.2.0.2 UDP 6000 \
        "{\"reason\":\"$drop\",\"rule.table\":\"npt_matrix\",\"rule.chain\":\"npt_policy\",\"rule.handle\":${h_jump:-null},
          \"rule.comment\":\"default/deny-6000 policy\",\"rule.cni\":\"kube-router\",
          \"rule.policy\":\"default/deny-6000\"}"
    wanted rule-legacy && cp /tmp/sent.iptables-legacy /tmp/sent.rule-legacy 2>/dev/null &&
        check_flow rule-legacy 10.4.0.2 10.5.0.2 UDP 9000 \
            "{\"rule.table\":\"filter\",\"rule.chain\":\"FORWARD\",\"rule.handle\":null,\"backend\":\"iptables-legacy\"}"
}

check_hook() {
    line=$(grep -m1 '^netpol-trace: attached ' /tmp/tail.err)
    mode=$(echo "$line" | sed -n 's/^netpol-trace: attached \([a-z_]*\) .*/\1/p')
    if [ -z "$line" ]; then
        result hook FAIL "--debug printed no attach line: $(head -c 300 /tmp/tail.err | tr '\n' ' ')"
    elif [ "$mode" != tp_btf ]; then
        # Every kernel of the matrix has BTF and the kfree_skb tracepoint's BTF type: tp_btf must load.
        result hook FAIL "attached $mode, want tp_btf: $line"
    else
        prog=$(echo "$line" | sed -n 's/.*(\(npt_[a-z_]*\)).*/\1/p')
        if kernel_at_least 5 17; then how="reason argument"; else how="no reason argument"; fi
        result hook PASS "$mode $prog ($how)"
    fi
}

# Waits for FILE (a ready file: the process writes its pid there once attached). 1, with PID killed, if PID exits
# first or 60 s pass. WAITED: tenths of a second waited.
await_ready() { # FILE PID
    WAITED=0
    while [ ! -s "$1" ]; do
        if ! kill -0 "$2" 2>/dev/null || [ $WAITED -ge 600 ]; then
            kill -9 "$2" 2>/dev/null
            wait "$2" 2>/dev/null
            return 1
        fi
        WAITED=$((WAITED + 1))
        sleep 0.1
    done
}

run_tail() {
    rm -f /tmp/tail.ready
    $NPT -o json --no-kubernetes --debug --duration 600 --ready-file /tmp/tail.ready \
        >/tmp/tail.json 2>/tmp/tail.err &
    TAIL_PID=$!
    await_ready /tmp/tail.ready $TAIL_PID || return 1
    say "TIME attach $((WAITED / 10)).$((WAITED % 10))"
    phase_start
    traffic
    sleep 0.5
    kill -INT $TAIL_PID
    i=0
    while kill -0 $TAIL_PID 2>/dev/null; do
        [ $i -ge 300 ] && { kill -9 $TAIL_PID; break; }
        i=$((i + 1))
        sleep 0.1
    done
    wait $TAIL_PID
}

# The capture's other attach modes, forced through npt_capture_tool: raw_tp and the classic tracepoint load and
# report the same drop as tp_btf does.
check_fallback() { # MODE
    scenario=fallback-$1
    rm -f /tmp/tool.ready
    $TOOL --mode "$1" --seconds 300 --ready-file /tmp/tool.ready >/tmp/tool.out 2>/tmp/tool.err &
    pid=$!
    if ! await_ready /tmp/tool.ready $pid; then
        result "$scenario" FAIL "did not attach: $(head -c 400 /tmp/tool.err | tr '\n' ' ')"
        return
    fi
    out=$(in_ns client $SEND tcp 10.2.0.2 8080 1 2>&1)
    sleep 0.5
    kill -INT $pid
    wait $pid
    attached=$(grep -m1 '^attached ' /tmp/tool.out)
    line=$(grep -m1 '^new tcp 10.1.0.2:[0-9]* -> 10.2.0.2:8080 ' /tmp/tool.out)
    want="reason=$(reason_for NETFILTER_DROP) enforcement=netfilter/FORWARD"
    case $attached in
        "attached mode=$1 "*) ;;
        *) result "$scenario" FAIL "attach line: ${attached:-none}"; return ;;
    esac
    case $line in
        *" $want "*) result "$scenario" PASS "$(echo "$attached" | cut -d' ' -f2-3) $want" ;;
        "") result "$scenario" FAIL "drop not reported ($out): $(grep -c '' /tmp/tool.out) lines" ;;
        *) result "$scenario" FAIL "want '$want' in: $line" ;;
    esac
}

# The cost of rule attribution: a UDP storm dropped by the node's nftables rule (16 flows), with no tracer,
# with the capture alone and with the capture plus the fexit programs, in interleaved rounds. Guests run
# ~6x slower than hardware: only the ratios mean something.
check_cost() {
    if ! kernel_at_least 5 11; then
        result fexit-cost SKIP "no rule attribution before 5.11 (no module BTF)"
        return
    fi
    : >/tmp/cost
    for _ in 1 2 3; do
        for mode in none capture fexit; do
            pid=
            if [ $mode != none ]; then
                rm -f /tmp/tool.ready
                flag=
                [ $mode = capture ] && flag=--no-rule-attribution
                $TOOL --no-events $flag --seconds 300 --ready-file /tmp/tool.ready >/tmp/tool.out 2>&1 &
                pid=$!
                i=0
                while [ ! -e /tmp/tool.ready ] && kill -0 $pid 2>/dev/null && [ $i -lt 600 ]; do
                    i=$((i + 1))
                    sleep 0.1
                done
                if [ $mode = fexit ] && ! grep -q 'rules="fexit on ' /tmp/tool.out; then
                    kill -INT $pid
                    wait $pid
                    result fexit-cost FAIL "rule attribution did not attach: $(head -c 300 /tmp/tool.out)"
                    return
                fi
            fi
            out=$(in_ns client $STORM 4 8 41000 10.2.0.2:4000 10.2.0.2:4001)
            if [ -n "$pid" ]; then
                kill -INT $pid
                wait $pid
            fi
            echo "$out" | jq -r --arg m $mode '"\($m) \(.total / .elapsed)"' >>/tmp/cost
        done
    done
    rates=$(awk '{ sum[$1] += $2; n[$1]++ } END {
        for (m in sum) avg[m] = sum[m] / n[m]
        printf "none %.0f/s, capture %.0f/s, capture+fexit %.0f/s; capture/none %.3f, (capture+fexit)/none %.3f, " \
            "(capture+fexit)/capture %.3f", avg["none"], avg["capture"], avg["fexit"], avg["capture"] / avg["none"],
            avg["fexit"] / avg["none"], avg["fexit"] / avg["capture"] }' /tmp/cost)
    rounds=$(awk '{ printf "%s%s=%.0f", (NR > 1 ? " " : ""), $1, $2 }' /tmp/cost)
    result fexit-cost PASS "drops: $rates (rounds: $rounds)"
}

# Starts a tail with --rule-trace in the node's namespace (where the rules are); 1 if it does not attach. nsenter
# forks here: RT_PID is the tail's own pid, from its ready file, and NS_PID the nsenter waiting for it.
start_rule_trace() { # OUTPUT DURATION
    rm -f /tmp/rt.ready
    in_ns node $NPT -o json --no-kubernetes --rule-trace --debug --duration "$2" --ready-file /tmp/rt.ready \
        >"$1" 2>>/tmp/rt.err &
    NS_PID=$!
    await_ready /tmp/rt.ready $NS_PID || return 1
    RT_PID=$(cat /tmp/rt.ready)
}

trace_tables() { in_ns node $NFT list tables | grep -c netpol_trace_; }

# --rule-trace: the jump flow's drop line names its rule from the trace (the path forward -> npt_policy, whatever
# fexit said), and the tool's table is gone after the tail exits. Killed, the kernel removes an owner table (5.12+);
# before, the table stays until the next tracer, which removes the tables of dead tracers.
check_rule_trace() {
    rm -f /tmp/rt.err
    if ! start_rule_trace /tmp/rt.json 600; then
        result rule-trace FAIL "did not attach: $(tail -n 1 /tmp/rt.err)"
        return
    fi
    during=$(trace_tables)
    send rule-trace client udp 10.2.0.2 6000
    sleep 0.5
    kill -INT $RT_PID
    wait $NS_PID
    after=$(trace_tables)
    verdict=$(jq -n -r '[inputs | select(.event == "drop" and .port == 6000)] as $d
        | if ($d | length) != 1 then "\($d | length) drop lines"
          elif $d[0].rule_trace != "traced" then "rule_trace \($d[0].rule_trace)"
          elif $d[0].rule.path != ["forward", "npt_policy"] then "path \($d[0].rule.path)"
          elif $d[0].rule.comment != "default/deny-6000 policy" then "comment \($d[0].rule.comment)"
          else "PASS via \($d[0].rule.via)" end' /tmp/rt.json 2>&1)
    case $verdict in PASS*) ;; *) result rule-trace FAIL "$verdict"; return ;; esac
    [ "$during" = 1 ] && [ "$after" = 0 ] ||
        { result rule-trace FAIL "trace tables: $during while tracing, $after after exit"; return; }
    start_rule_trace /tmp/rt2.json 600 || { result rule-trace FAIL "second tracer did not attach"; return; }
    kill -9 $RT_PID
    wait $NS_PID 2>/dev/null
    sleep 0.2
    killed=$(trace_tables)
    if kernel_at_least 5 12; then
        [ "$killed" = 0 ] || { result rule-trace FAIL "an owner table outlived its killed tracer"; return; }
        how="owner table gone with the killed tracer"
    else
        start_rule_trace /tmp/rt3.json 1 || { result rule-trace FAIL "third tracer did not attach"; return; }
        wait $NS_PID
        left=$(trace_tables)
        [ "$killed" = 1 ] && [ "$left" = 0 ] ||
            { result rule-trace FAIL "no owner tables: $killed left by the killed tracer, $left after the next"; return; }
        how="no owner tables: the killed tracer's table removed by the next"
    fi
    result rule-trace PASS "${verdict#PASS }, path forward>npt_policy; $how"
}

# npt.debug=1: every scenario's drop once more through npt_capture_tool, which prints the drop location.
debug_locations() {
    rm -f /tmp/tool.ready
    $TOOL --seconds 300 --ready-file /tmp/tool.ready >/tmp/tool.out 2>&1 &
    pid=$!
    i=0
    while [ ! -e /tmp/tool.ready ] && kill -0 $pid 2>/dev/null && [ $i -lt 600 ]; do
        i=$((i + 1))
        sleep 0.1
    done
    traffic
    sleep 0.5
    kill -INT $pid
    wait $pid
    sed 's/^/npt-matrix-debug: /' /tmp/tool.out
}

matrix_main() {
    phase_start
    if ! topology >/tmp/setup.log 2>&1 || ! dataplane >>/tmp/setup.log 2>&1; then
        for s in $ALL_SCENARIOS; do
            wanted "$s" && result "$s" FAIL "guest setup failed: $(tail -n 3 /tmp/setup.log | tr '\n' ' ')"
        done
        return
    fi
    phase_end setup
    phase_start
    run_tail
    rc=$?
    # The drop scenarios: their traffic, the tail's exit and the checks below (attach is timed apart).
    if [ "$NPT_DEBUG" = 1 ] || [ $rc -ne 0 ]; then
        sed 's/^/npt-matrix-tail-stderr: /' /tmp/tail.err
        jq -c '{event, src: .src.ip, dst: .dst.ip, protocol, port, reason, enforcement, backend, ct_state, count,
            rule}' /tmp/tail.json 2>&1 | sed 's/^/npt-matrix-tail-json: /'
    fi
    if [ $rc -ne 0 ]; then
        for s in hook nft-drop nft-reject tc-drop ipv6 iptables-legacy rule-nft rule-jump rule-legacy; do
            wanted "$s" && result "$s" FAIL "the tail exited $rc: $(tail -n 2 /tmp/tail.err | tr '\n' ' ')"
        done
    else
        drop=$(reason_for NETFILTER_DROP)
        wanted hook && check_hook
        wanted nft-drop && check_flow nft-drop 10.1.0.2 10.2.0.2 TCP 8080 \
            "{\"reason\":\"$drop\",\"enforcement\":\"netfilter/FORWARD\",\"backend\":\"nftables\",\"ct_state\":\"new\"}"
        wanted nft-reject && check_flow nft-reject 10.1.0.2 10.2.0.2 UDP 5353 \
            "{\"reason\":\"$drop\",\"enforcement\":\"netfilter/FORWARD\",\"backend\":\"nftables\",\"ct_state\":\"new\"}"
        wanted tc-drop && check_flow tc-drop 10.3.0.2 10.2.0.2 UDP 7000 \
            "{\"reason\":\"$(reason_for TC_INGRESS)\",\"enforcement\":\"tc/ingress\",\"backend\":\"tc\",\"ct_state\":\"none\"}"
        wanted ipv6 && check_flow ipv6 fd00:1::2 fd00:2::2 TCP 8443 \
            "{\"reason\":\"$drop\",\"enforcement\":\"netfilter/FORWARD\",\"backend\":\"nftables\",\"ct_state\":\"new\"}"
        wanted iptables-legacy && check_flow iptables-legacy 10.4.0.2 10.5.0.2 UDP 9000 \
            "{\"reason\":\"$drop\",\"enforcement\":\"netfilter/FORWARD\",\"backend\":\"iptables-legacy\",\"ct_state\":\"none\"}"
        rules=
        for s in rule-nft rule-jump rule-legacy; do wanted $s && rules="$rules $s"; done
        [ -n "$rules" ] && check_rules $rules
    fi
    phase_end drops
    timed rule-trace check_rule_trace
    [ "$NPT_DEBUG" = 1 ] && debug_locations
    timed fallback-raw_tp check_fallback raw_tp
    timed fallback-tracepoint check_fallback tracepoint
    timed fexit-cost check_cost
}

# Runs a wanted scenario's check and prints how long it took.
timed() { # SCENARIO CMD...
    wanted "$1" || return 0
    TIMED_NAME=$1
    shift
    phase_start
    "$@"
    phase_end "$TIMED_NAME"
}
