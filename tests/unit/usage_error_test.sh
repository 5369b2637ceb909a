#!/bin/sh
# usage_error_test.sh BINARY EXPECTED ARGS...: runs BINARY ARGS and checks the usage-error contract: exit status 2,
# nothing on stdout, exactly two lines on stderr, the first "netpol-trace: ..." naming EXPECTED, the second
# pointing at --help.
bin=$1 expected=$2
shift 2
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
"$bin" "$@" >"$out" 2>"$err"
rc=$?
fail() { echo "FAIL: $*"; echo "--- stdout"; cat "$out"; echo "--- stderr"; cat "$err"; exit 1; }
[ "$rc" -eq 2 ] || fail "exit status $rc, expected 2"
[ -s "$out" ] && fail "stdout is not empty"
[ "$(wc -l <"$err")" -eq 2 ] || fail "stderr has $(wc -l <"$err") lines, expected 2"
head -n1 "$err" | grep -q "^netpol-trace: .*$expected" || fail "first line does not name '$expected'"
sed -n 2p "$err" | grep -q -- "--help" || fail "second line does not point at --help"
echo "ok: $(head -n1 "$err")"
