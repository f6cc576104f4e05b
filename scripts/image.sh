#!/usr/bin/env bash
# Builds the sealant container image from the committed HEAD, with no Docker engine
# and no registry: release binaries built on the host, laid out by image/rootfs.sh,
# and the Containerfile's final stage assembled by buildah with those binaries as its
# `build` stage. The same commit gives the same image digest: file times and the
# image's creation time are the commit's (SOURCE_DATE_EPOCH), and the binaries are
# built from a copy of the commit at a fixed path, with the source and registry paths
# remapped out of them.
#
# Usage: scripts/image.sh
#   env IMAGE_OUT     where the archives go (default ~/.cache/sealant/image)
#       IMAGE_TAG     the tag (default VERSION-COMMIT)
#       SOURCE_DATE_EPOCH  the time stamped on everything (default: HEAD's commit time)
#
# Prints the two archives and the manifest digest:
#   IMAGE_OCI=.../sealant-TAG.oci.tar       (ctr images import, podman load, docker load)
#   IMAGE_DOCKER=.../sealant-TAG.docker.tar (docker load, kind load image-archive, ctr)
#   IMAGE_REF=localhost/sealant:TAG
#   IMAGE_DIGEST=sha256:...
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${SEALANT_CACHE:-$HOME/.cache/sealant}
cd "$ROOT"

for tool in buildah skopeo ldd git; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "image.sh: $tool is missing (scripts/system-deps.sh installs it)" >&2
        exit 1
    fi
done

# One build at a time: the source copy, the target directory and buildah's store are
# shared by every clone on the machine.
mkdir -p "$CACHE"
exec 9>"$CACHE/image.lock"
flock 9

commit=$(git rev-parse HEAD)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
TAG=${IMAGE_TAG:-$version-${commit:0:12}}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}
OUT=${IMAGE_OUT:-$CACHE/image}

# The committed tree at a fixed path, so that neither the clone's path nor an
# uncommitted change reaches the image.
# It is unpacked again only for another commit, with the time of unpacking on every
# file (`tar -m`), so that cargo rebuilds what changed; the commit's own file times
# could be older than the last build, and cargo would keep stale binaries.
SRC=$CACHE/image-src
mkdir -p "$OUT"
if [ "$(cat "$SRC.commit" 2>/dev/null)" != "$commit" ]; then
    rm -rf "$SRC" "$SRC.commit"
    mkdir -p "$SRC"
    git archive --format=tar "$commit" | tar -x -m -C "$SRC"
    echo "$commit" >"$SRC.commit"
fi

echo "image.sh: building release binaries of $commit (cargo build --release)" >&2
export CARGO_TARGET_DIR=$CACHE/image-target CARGO_INCREMENTAL=0
cargo_home=${CARGO_HOME:-$HOME/.cargo}
export RUSTFLAGS="--remap-path-prefix=$SRC=/sealant --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$CARGO_TARGET_DIR=/target"
# The binaries take no time stamp of their own, so the build gets a fixed
# SOURCE_DATE_EPOCH, not the commit's: the C build scripts (aws-lc-sys, psm, through
# the cc crate) rerun whenever it changes, and with the commit's time every new commit
# (and every other time the tests stamp) rebuilt AWS-LC and everything above it.
(cd "$SRC" && SOURCE_DATE_EPOCH=0 cargo build --release --locked -p sealant-controller -p sealant-cli)

context=$(mktemp -d)
store=$CACHE/buildah
trap 'rm -rf "$context"' EXIT
"$SRC/image/rootfs.sh" "$CARGO_TARGET_DIR/release" "$context/out/rootfs"
find "$context" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

echo "image.sh: assembling localhost/sealant:$TAG (buildah)" >&2
buildah_() {
    STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot \
        buildah --root "$store/root" --runroot "$store/run" "$@"
}
buildah_ build --quiet --timestamp "$SOURCE_DATE_EPOCH" \
    --build-context "build=$context" -f "$SRC/Containerfile" \
    -t "localhost/sealant:$TAG" "$context" >/dev/null

oci=$OUT/sealant-$TAG.oci.tar
docker=$OUT/sealant-$TAG.docker.tar
rm -f "$oci" "$docker"
buildah_ push --quiet "localhost/sealant:$TAG" "oci-archive:$oci:sealant:$TAG"
buildah_ push --quiet "localhost/sealant:$TAG" "docker-archive:$docker:localhost/sealant:$TAG"
digest=$(skopeo inspect --format '{{.Digest}}' "oci-archive:$oci")
# The archives are the output; buildah's copy (a full root filesystem per image with
# the vfs driver) would only grow the cache with every commit.
buildah_ rmi --force "localhost/sealant:$TAG" >/dev/null

echo "IMAGE_OCI=$oci"
echo "IMAGE_DOCKER=$docker"
echo "IMAGE_REF=localhost/sealant:$TAG"
echo "IMAGE_DIGEST=$digest"
