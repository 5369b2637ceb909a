#!/usr/bin/env bash
# Unit test of scripts/kernel-matrix.d/debian.sh on recorded Debian archive output (tests/fixtures/kernel-matrix:
# `apt-cache show` of the cloud metapackage and image packages, `dpkg-deb -c` listings): which kernel a slot takes,
# and the packages and image path of both package layouts (the kernel in linux-image-<release> up to 6.18; from
# 6.19 on in linux-binary-<release>, /boot on 6.19 and /usr/lib/modules/<release>/vmlinuz on 7.x).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
fixtures=$root/tests/fixtures/kernel-matrix
# shellcheck source=../../scripts/kernel-matrix.d/debian.sh
. "$root/scripts/kernel-matrix.d/debian.sh"

passed=0
failed=0
expect() { # name want got
    if [[ $2 == "$3" ]]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        printf 'FAIL %s\n  want: %q\n  got:  %q\n' "$1" "$2" "$3"
    fi
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A tree as dpkg-deb -x would leave it, from `dpkg-deb -c` listings (files only).
unpack() { # dir listing...
    local dir=$1 f
    shift
    mkdir -p "$dir"
    for f in "$@"; do
        while read -r path; do
            mkdir -p "$dir/$(dirname "$path")"
            : >"$dir/$path"
        done <"$fixtures/$f"
    done
}

# --- which kernel a slot takes ---
expect "metapackage versions of trixie-backports, experimental and sid" \
    "7.3.4-1~bpo13+1 linux-image-7.3.4+deb13-cloud-amd64
7.3~rc7-1~exp1 linux-image-7.3-cloud-amd64
7.2.13-1 linux-image-7.2.13+deb14-cloud-amd64" "$(meta_versions <"$fixtures/meta-newest.show")"
# sid's 7.2.13 is apt's candidate (priority 500 against trixie-backports' 100): the newest version wins instead.
expect "newest: the highest version, not apt's candidate" "linux-image-7.3.4+deb13-cloud-amd64 7.3.4-1~bpo13+1" \
    "$(meta_versions <"$fixtures/meta-newest.show" | pick_kernel newest)"
expect "newest: 7.3~rc7 (experimental) is newer than 7.2.13 (sid)" "linux-image-7.3-cloud-amd64 7.3~rc7-1~exp1" \
    "$(meta_versions <"$fixtures/meta-newest.show" | grep -v bpo13 | pick_kernel newest)"
expect "6.12: trixie-security's over bookworm-backports'" "linux-image-6.12.118+deb13-cloud-amd64 6.12.118-1" \
    "$(meta_versions <"$fixtures/meta-6.12.show" | pick_kernel 6.12)"
expect "6.1 takes no 6.12 kernel" "none" "$(meta_versions <"$fixtures/meta-6.12.show" | pick_kernel 6.1 || echo none)"
expect "6.12 takes no 7.x kernel" "none" "$(meta_versions <"$fixtures/meta-newest.show" | pick_kernel 6.12 || echo none)"
expect "upstream version of a backport" "7.3.4" "$(upstream_version 7.3.4-1~bpo13+1)"
expect "upstream version of a release candidate" "7.3~rc7" "$(upstream_version 7.3~rc7-1~exp1)"

# --- the packages holding the kernel ---
expect "7.3.4 (split layout): binary, modules, base" \
    "linux-base-7.3.4+deb13-cloud-amd64=7.3.4-1~bpo13+1
linux-binary-7.3.4+deb13-cloud-amd64=7.3.4-1~bpo13+1
linux-modules-7.3.4+deb13-cloud-amd64=7.3.4-1~bpo13+1" \
    "$(image_parts linux-image-7.3.4+deb13-cloud-amd64 <"$fixtures/image-7.3.4.show" | sort)"
expect "6.19.14 (split layout)" 3 \
    "$(image_parts linux-image-6.19.14+deb13-cloud-amd64 <"$fixtures/image-6.19.14.show" | grep -c .)"
expect "7.3~rc7 (experimental, split layout)" "linux-binary-7.3-cloud-amd64=7.3~rc7-1~exp1" \
    "$(image_parts linux-image-7.3-cloud-amd64 <"$fixtures/image-7.3-rc7.show" | grep binary)"
expect "6.12.118 holds its kernel itself" "" \
    "$(image_parts linux-image-6.12.118+deb13-cloud-amd64 <"$fixtures/image-6.12.118.show")"

# --- where the image is ---
unpack "$tmp/6.12" image-6.12.118.contents
expect "6.12: /boot/vmlinuz-<release>" "$tmp/6.12/./boot/vmlinuz-6.12.118+deb13-cloud-amd64 6.12.118+deb13-cloud-amd64" \
    "$(find_vmlinuz "$tmp/6.12/.")"
unpack "$tmp/7.3" image-7.3.4.contents binary-7.3.4.contents modules-7.3.4.contents base-7.3.4.contents
expect "7.3: /usr/lib/modules/<release>/vmlinuz" \
    "$tmp/7.3/usr/lib/modules/7.3.4+deb13-cloud-amd64/vmlinuz 7.3.4+deb13-cloud-amd64" "$(find_vmlinuz "$tmp/7.3")"
unpack "$tmp/6.19" binary-6.19.14.contents
expect "6.19: /boot/vmlinuz-<release> in linux-binary" "6.19.14+deb13-cloud-amd64" \
    "$(find_vmlinuz "$tmp/6.19" | cut -d' ' -f2)"
unpack "$tmp/meta" image-7.3.4.contents
expect "the 7.3 metapackage alone has no image" "none" "$(find_vmlinuz "$tmp/meta" || echo none)"

echo "kernel_matrix_debian_test: $passed passed, $failed failed"
((failed == 0))
