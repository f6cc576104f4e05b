#!/usr/bin/env bash
# Lays out the root filesystem of the sealant image from release binaries: the two
# binaries, `controller` (the name Bitnami's chart runs), exactly the shared libraries
# the dynamic linker loads for them, and a passwd entry for the numeric user. Nothing
# else: no shell, no package manager. Both the Containerfile's build stage and
# scripts/image.sh run it, so the two images hold the same files.
#
# Usage: image/rootfs.sh BIN_DIR ROOTFS
set -euo pipefail

bin_dir=$1
rootfs=$2
bins=(sealant-controller sealant)

rm -rf "$rootfs"
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"
for bin in "${bins[@]}"; do
    install -m 0755 "$bin_dir/$bin" "$rootfs/usr/local/bin/$bin"
done
# Bitnami's chart and image run `controller`; sealant's controller takes its flags.
ln -s sealant-controller "$rootfs/usr/local/bin/controller"

# The libraries, at the paths the binaries ask for: the interpreter (PT_INTERP) and
# every library ldd resolves (glibc, libgcc_s). Copied through their symlinks.
libs=$(for bin in "${bins[@]}"; do ldd "$bin_dir/$bin"; done |
    awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\/.*ld-linux/ { print $1 }' | sort -u)
if [ -z "$libs" ]; then
    echo "image/rootfs.sh: ldd found no libraries; are the binaries dynamically linked?" >&2
    exit 1
fi
for lib in $libs; do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
done

# The numeric user the image runs as (distroless's nonroot), so tools can name it.
echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' >"$rootfs/etc/passwd"
echo 'nonroot:x:65532:' >"$rootfs/etc/group"
