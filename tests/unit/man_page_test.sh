#!/bin/sh
# Every command and every long option the binary accepts is in the man page (docs/netpol-trace.1): asks the
# binary's own completion for them (netpol-trace __complete), so a new option without documentation fails here.
set -eu
binary=$1 page=$2
text=$(sed 's/\\-/-/g' "$page")
missing=0
for command in "" $("$binary" __complete "" | sed -n 's/\t.*//p'); do
    options=$("$binary" __complete $command -- | sed -n 's/\t.*//p')
    [ -n "$options" ] || { echo "no options listed for '${command:-the tail}'" >&2; exit 1; }
    for option in $options; do
        case "$text" in
        *"$option"[!a-z-]*) ;;
        *) echo "docs/netpol-trace.1 does not document ${command:-the tail}'s $option" >&2; missing=1 ;;
        esac
    done
    if [ -n "$command" ]; then
        case "$text" in *".B $command"*) ;; *) echo "docs/netpol-trace.1 does not document '$command'" >&2; missing=1 ;; esac
    fi
done
exit $missing
