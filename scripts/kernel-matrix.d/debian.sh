# shellcheck shell=bash
# Debian's kernel packages for scripts/kernel-matrix (sourced, bash): which version a slot takes, which packages
# hold that kernel, where its image is once unpacked. Kept apart from the downloading so that the two package
# layouts can be tested on recorded apt-cache and dpkg-deb output (tests/unit/kernel_matrix_debian_test.sh).
#
# Up to 6.18, linux-image-<release> holds the kernel (/boot/vmlinuz-<release>) and its modules. From 6.19 on it is a
# metapackage depending on linux-binary-<release> (the image: /boot/vmlinuz-<release> on 6.19,
# /usr/lib/modules/<release>/vmlinuz on 7.x), linux-modules-<release> and linux-base-<release> (System.map, config
# and the modules.order/modules.builtin that depmod reads). Both layouts are handled.

# "<version> <image package>" for each version of the linux-image-cloud-amd64 metapackage in an `apt-cache show`
# listing (every source's version: apt's candidate follows pin priorities, not versions).
meta_versions() { # < apt-cache show linux-image-cloud-amd64
    awk '
        function flush() { if (v != "" && p != "") print v, p; v = ""; p = "" }
        /^Package: / { flush() }
        /^Version: / { v = $2 }
        /^Depends: / {
            n = split(substr($0, 10), deps, /[,|]/)
            for (i = 1; i <= n; i++) {
                split(deps[i], w, " ")
                if (w[1] ~ /^linux-image-[0-9].*-cloud-amd64$/) p = w[1]
            }
        }
        /^$/ { flush() }
        END { flush() }'
}

# The upstream part of a Debian version: 7.3.4-1~bpo13+1 -> 7.3.4, 7.3~rc7-1~exp1 -> 7.3~rc7.
upstream_version() { # debian-version
    local v=${1#*:}
    echo "${v%-*}"
}

# A kernel belongs to a slot when its upstream version is of the slot's series (6.1 takes 6.1.x, not 6.12.x);
# "newest" takes any.
version_fits() { # slot upstream-version
    [[ $1 == newest || $2 == "$1".* || $2 == "$1"~* || $2 == "$1" ]]
}

# "<image package> <version>" of the newest kernel fitting the slot; 1 when none does.
pick_kernel() { # slot < meta_versions lines
    local slot=$1 v p best_v="" best_p=""
    while read -r v p; do
        [[ -n $p ]] && version_fits "$slot" "$(upstream_version "$v")" || continue
        if [[ -z $best_v ]] || dpkg --compare-versions "$v" gt "$best_v"; then
            best_v=$v
            best_p=$p
        fi
    done
    [[ -n $best_v ]] || return 1
    echo "$best_p $best_v"
}

# The packages that hold an image package's kernel besides itself, as "<package>=<version>" for apt-get download:
# its linux-binary-, linux-modules- and linux-base-<release> dependencies (the layout from 6.19 on); nothing for
# an image package that holds the kernel itself.
image_parts() { # image-package < apt-cache show <image-package>=<version>
    local rel=${1#linux-image-} dep name version
    sed -n 's/^Depends: //p' | tr ',|' '\n\n' | while read -r dep; do
        name=${dep%% *}
        case $name in
            "linux-binary-$rel" | "linux-modules-$rel" | "linux-base-$rel") ;;
            *) continue ;;
        esac
        version=$(sed -n 's/.*(= *\([^)]*\)).*/\1/p' <<<"$dep")
        echo "$name${version:+=$version}"
    done
}

# The kernel image of an unpacked kernel and its release: "<path> <release>"; 1 when there is none.
find_vmlinuz() { # unpacked-dir
    local f d
    for f in "$1"/boot/vmlinuz-* "$1"/usr/lib/modules/*/vmlinuz "$1"/lib/modules/*/vmlinuz; do
        [[ -f $f ]] || continue
        case $f in
            */boot/vmlinuz-*) echo "$f ${f##*/vmlinuz-}" ;;
            *) d=${f%/vmlinuz}
               echo "$f ${d##*/}" ;;
        esac
        return 0
    done
    return 1
}
