#!/usr/bin/env bash
# Build and pin the real test peers for sealant's end-to-end and compatibility tests
# (docs/design.md, "Testing ladder", rungs 4 and 5): etcd, kube-apiserver,
# kube-controller-manager, Bitnami's kubeseal and controller, and the reference age
# tools (filippo.io/age: age and age-keygen), which open sealant's bundles and values,
# Bitnami's own integration suite (its Ginkgo specs, compiled to a test binary), and the
# two GitOps health judges: kstatus (sigs.k8s.io/cli-utils, which Flux uses) and Argo
# CD's health.lua for SealedSecret run in gopher-lua (tests/peers/kstatus and
# tests/peers/argocd-health: tiny Go programs committed here), and helm, which renders
# and checks charts/sealant.
#
# Everything is built from the Go module proxy with the machine's Go toolchain and
# cached outside the repository. The script is idempotent: a binary that already
# exists is not rebuilt, so a warm run takes well under a second.
#
# Usage:
#   tests/peers/build.sh [PEER...]          # PEER: etcd kube-apiserver
#                                           #   kube-controller-manager kubeseal
#                                           #   sealed-secrets-controller age
#                                           #   age-keygen bitnami-integration
#                                           #   bitnami-crd kubectl kstatus
#                                           #   argocd-health helm kubelet kube-proxy
#                                           #   kube-scheduler pause-image
#                                           #   bitnami-image (default: all)
#   eval "$(tests/peers/build.sh)"          # sets TEST_ASSET_* in the current shell
#   export $(tests/peers/build.sh)          # same, exported
#   tests/peers/build.sh >> "$GITHUB_ENV"   # CI
#
# stdout carries only NAME=path lines (shell-quoted); progress goes to stderr.
#
# Environment:
#   TEST_ASSET_ETCD, TEST_ASSET_KUBE_APISERVER, TEST_ASSET_KUBE_CONTROLLER_MANAGER,
#   TEST_ASSET_KUBESEAL, TEST_ASSET_SEALED_SECRETS_CONTROLLER, TEST_ASSET_AGE,
#   TEST_ASSET_AGE_KEYGEN, TEST_ASSET_BITNAMI_INTEGRATION, TEST_ASSET_BITNAMI_CRD,
#   TEST_ASSET_KUBECTL, TEST_ASSET_KSTATUS, TEST_ASSET_ARGOCD_HEALTH, TEST_ASSET_HELM,
#   TEST_ASSET_KUBELET, TEST_ASSET_KUBE_PROXY, TEST_ASSET_KUBE_SCHEDULER,
#   TEST_ASSET_PAUSE_IMAGE, TEST_ASSET_BITNAMI_IMAGE (docker-archive files),
#   TEST_ASSET_BITNAMI_CHART (a directory)
#                         use this binary instead of building it (printed as given).
#   SEALANT_TEST_ASSETS   a KUBEBUILDER_ASSETS-style directory; a peer found there as
#                         etcd, kube-apiserver, kube-controller-manager, kubeseal,
#                         sealed-secrets-controller (or controller), age, age-keygen,
#                         bitnami-integration, kstatus, argocd-health, helm, kubelet,
#                         kube-proxy or kube-scheduler is used as is.
#   SEALANT_CACHE         cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/sealant).
#   SEALANT_NICE=1        run the Go builds under `nice -n 19`.
#   SEALANT_GO_P          go build -p (default 2).
#   SEALANT_GOTOOLCHAIN   GOTOOLCHAIN for the builds (default local).
set -euo pipefail

# ---- Pinned versions -------------------------------------------------------------
# Newest patch releases that the module proxy serves AND the checksum database
# (sum.golang.org, via the proxy) knows. Kubernetes v1.34.11 and v1.34.12 are on the
# proxy but their sumdb lookups return 404 here, so v1.34.10 is the newest verifiable one.
ETCD_VERSION=v3.6.16            # go.etcd.io/etcd/server/v3 (its module root is main)
KUBERNETES_VERSION=v1.34.10     # k8s.io/kubernetes
SEALED_SECRETS_VERSION=v0.36.6  # github.com/bitnami-labs/sealed-secrets
AGE_VERSION=v1.3.2              # filippo.io/age (cmd/age, cmd/age-keygen)
KSTATUS_VERSION=v0.37.2         # sigs.k8s.io/cli-utils (pkg/kstatus), as tests/peers/kstatus/go.mod
# github.com/argoproj/argo-cd/v3: its health.lua for SealedSecret, run in the gopher-lua
# its go.mod requires (tests/peers/argocd-health/go.mod must match). v3.6.x needs Go 1.27.
ARGOCD_VERSION=v3.5.8
HELM_VERSION=v4.3.2             # helm.sh/helm/v4 (cmd/helm): renders and installs charts/sealant

# ---- Environment -----------------------------------------------------------------
CACHE=${SEALANT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sealant}
BIN=$CACHE/bin
PEERS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WRAPPERS=$CACHE/go/wrappers
GO_P=${SEALANT_GO_P:-2}

export GOPATH=$CACHE/go
export GOMODCACHE=$CACHE/go/pkg/mod
export GOCACHE=$CACHE/go/cache
export GOTOOLCHAIN=${SEALANT_GOTOOLCHAIN:-local}
# Override any ambient GOFLAGS (-mod=vendor etc. would break these builds);
# -modcacherw keeps the module cache deletable with plain rm -rf.
export GOFLAGS="-modcacherw -buildvcs=false"
export GO111MODULE=on GOWORK=off
export CGO_ENABLED=0

log() { printf 'peers: %s\n' "$*" >&2; }
die() { printf 'peers: error: %s\n' "$*" >&2; exit 1; }

run_go() {
    if [[ ${SEALANT_NICE:-0} == 1 ]]; then
        nice -n 19 go "$@"
    else
        go "$@"
    fi
}

# ---- Argument handling -----------------------------------------------------------
ALL_PEERS=(etcd kube-apiserver kube-controller-manager kubeseal sealed-secrets-controller
    age age-keygen bitnami-integration bitnami-crd bitnami-chart kubectl kstatus argocd-health helm
    kubelet kube-proxy kube-scheduler pause-image bitnami-image)
if [[ $# -eq 0 ]]; then
    PEERS=("${ALL_PEERS[@]}")
else
    PEERS=()
    for p in "$@"; do
        case $p in
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
            exit 0
            ;;
        etcd | kube-apiserver | kube-controller-manager | kubeseal | sealed-secrets-controller | \
            age | age-keygen | bitnami-integration | bitnami-crd | bitnami-chart | kubectl | kstatus | \
            argocd-health | helm | kubelet | kube-proxy | kube-scheduler | pause-image | bitnami-image)
            PEERS+=("$p")
            ;;
        *) die "unknown peer '$p' (known: ${ALL_PEERS[*]})" ;;
        esac
    done
fi

# ---- Helpers ---------------------------------------------------------------------
TMPFILES=()
cleanup() { [[ ${#TMPFILES[@]} -eq 0 ]] || rm -rf "${TMPFILES[@]}"; }
trap cleanup EXIT

LOCKED=0
lock() {
    [[ $LOCKED == 1 ]] && return
    mkdir -p "$CACHE"
    if command -v flock >/dev/null; then
        exec 9>"$CACHE/.build.lock"
        flock 9
    fi
    LOCKED=1
}

need_go() {
    command -v go >/dev/null || die "go is not on PATH (needed to build the test peers)"
}

# module_field MODULE@VERSION TEMPLATE: one `go list -m` query, run outside any module.
module_field() {
    (cd "$CACHE" && go list -m -f "$2" "$1")
}

# Copy the `go` and `godebug` directives of an upstream go.mod, so the wrapper's binary
# gets the same default GODEBUG settings as an upstream build.
go_directives() {
    awk '
        /^go[ \t]/ { print; next }
        /^godebug[ \t]*\(/ { inblock = 1; print; next }
        inblock { print; if ($0 ~ /^\)/) inblock = 0; next }
        /^godebug[ \t]/ { print }
    ' "$1"
}

# install_checked TMP FINAL EXPECTED: TMP --version must contain EXPECTED.
install_checked() {
    local tmp=$1 final=$2 expected=$3 out
    out=$("$tmp" --version 2>&1) || die "$tmp --version failed: $out"
    [[ $out == *"$expected"* ]] || die "$(basename "$final") --version printed '$out', expected '$expected'"
    mv -f "$tmp" "$final"
    log "built $final (${out%%$'\n'*})"
}

# new_tmp: set NEW_TMP to a fresh temporary file in $BIN, removed on exit unless moved.
new_tmp() {
    mkdir -p "$BIN"
    NEW_TMP=$(mktemp "$BIN/.tmp.XXXXXX")
    TMPFILES+=("$NEW_TMP")
}

# go_install PKG@VERSION LDFLAGS: `go install` with upstream's go.mod and go.sum into a
# fresh GOBIN; sets NEW_TMP to the binary (removed on exit unless moved).
go_install() {
    local target=$1 ldflags=$2 gobin
    need_go
    mkdir -p "$CACHE/go"
    gobin=$(mktemp -d "$CACHE/go/.gobin.XXXXXX")
    TMPFILES+=("$gobin")
    (cd "$CACHE" && GOBIN=$gobin run_go install -p "$GO_P" -trimpath -ldflags "$ldflags" "$target")
    new_tmp
    mv -f "$gobin/$(basename "${target%@*}")" "$NEW_TMP"
}

# ---- etcd ------------------------------------------------------------------------
build_etcd() {
    local out=$1 dir=$WRAPPERS/etcd-$ETCD_VERSION mod=go.etcd.io/etcd/server/v3
    need_go
    if [[ ! -f $dir/.ready ]]; then
        log "preparing wrapper module for $mod@$ETCD_VERSION"
        rm -rf "$dir" && mkdir -p "$dir"
        local upstream
        upstream=$(module_field "$mod@$ETCD_VERSION" '{{.GoMod}}')
        {
            echo "module sealant.test/peers/etcd"
            echo
            go_directives "$upstream"
            echo
            echo "require $mod $ETCD_VERSION"
        } >"$dir/go.mod"
        (cd "$dir" && run_go get "$mod@$ETCD_VERSION")
        touch "$dir/.ready"
    fi
    local sha ldflags="-s -w" tmp
    sha=$(module_field "go.etcd.io/etcd/api/v3@$ETCD_VERSION" '{{with .Origin}}{{.Hash}}{{end}}' 2>/dev/null || true)
    [[ -z $sha ]] || ldflags+=" -X go.etcd.io/etcd/api/v3/version.GitSHA=${sha:0:7}"
    new_tmp && tmp=$NEW_TMP
    log "building etcd $ETCD_VERSION"
    (cd "$dir" && run_go build -p "$GO_P" -trimpath -ldflags "$ldflags" -o "$tmp" "$mod")
    install_checked "$tmp" "$out" "etcd Version: ${ETCD_VERSION#v}"
}

# ---- Kubernetes --------------------------------------------------------------------
# k8s.io/kubernetes is not meant to be a dependency: its go.mod requires every staging
# module (k8s.io/api, k8s.io/client-go, ...) at v0.0.0 and replaces it with
# ./staging/src/..., which only works inside its own repository. The wrapper module
# requires k8s.io/kubernetes and replaces each of those staging modules with the
# published v0.MINOR.PATCH of the same release. The list is read from upstream's go.mod.
k8s_wrapper() {
    local dir=$WRAPPERS/kubernetes-$KUBERNETES_VERSION mod=k8s.io/kubernetes
    [[ -f $dir/.ready ]] && return
    need_go
    log "preparing wrapper module for $mod@$KUBERNETES_VERSION"
    rm -rf "$dir" && mkdir -p "$dir"
    local upstream staging_version m
    upstream=$(module_field "$mod@$KUBERNETES_VERSION" '{{.GoMod}}')
    staging_version=v0.${KUBERNETES_VERSION#v1.}
    local -a staging=() queries=() available=()
    mapfile -t staging < <(awk '
        /=>[ \t]*\.\/staging\/src\// { sub(/^replace[ \t]+/, ""); print $1 }
    ' "$upstream")
    [[ ${#staging[@]} -gt 0 ]] || die "no ./staging replace lines in $upstream"
    for m in "${staging[@]}"; do queries+=("$m@$staging_version"); done
    # Staging modules that only examples use (k8s.io/sample-*) are not always published
    # for every patch release. They are never built here, so they are left unreplaced.
    mapfile -t available < <(cd "$CACHE" && go list -m -e \
        -f '{{if not .Error}}{{.Path}}{{end}}' "${queries[@]}" | grep .)
    for m in "${staging[@]}"; do
        [[ " ${available[*]} " == *" $m "* ]] || log "note: $m@$staging_version is not on the proxy; not replaced"
    done
    {
        echo "module sealant.test/peers/kubernetes"
        echo
        go_directives "$upstream"
        echo
        echo "require $mod $KUBERNETES_VERSION"
        echo
        echo "replace ("
        for m in "${available[@]}"; do printf '\t%s => %s %s\n' "$m" "$m" "$staging_version"; done
        echo ")"
    } >"$dir/go.mod"
    (cd "$dir" && run_go get \
        "$mod/cmd/kube-apiserver@$KUBERNETES_VERSION" \
        "$mod/cmd/kube-controller-manager@$KUBERNETES_VERSION")
    touch "$dir/.ready"
}

build_k8s() {
    local name=$1 out=$2 dir=$WRAPPERS/kubernetes-$KUBERNETES_VERSION
    k8s_wrapper
    # kubectl's, the kubelet's and kube-proxy's packages need a few modules the two
    # server commands do not: added to the wrapper once per command (no existing
    # version changes), marked so a warm run skips it.
    if [[ $name != kube-apiserver && $name != kube-controller-manager && ! -f $dir/.$name-ready ]]; then
        log "adding $name to the wrapper module"
        (cd "$dir" && run_go get "k8s.io/kubernetes/cmd/$name@$KUBERNETES_VERSION")
        touch "$dir/.$name-ready"
    fi
    local minor date sha tree=clean ldflags="-s -w" key val
    minor=${KUBERNETES_VERSION#v1.}
    minor=${minor%%.*}
    # Same variables as hack/lib/version.sh; buildDate is the release commit's time,
    # so rebuilding gives the same binary.
    date=$(module_field "k8s.io/kubernetes@$KUBERNETES_VERSION" '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}')
    sha=$(module_field "k8s.io/kubernetes@$KUBERNETES_VERSION" '{{with .Origin}}{{.Hash}}{{end}}' 2>/dev/null || true)
    for kv in "gitVersion=$KUBERNETES_VERSION" gitMajor=1 "gitMinor=$minor" \
        "buildDate=$date" "gitTreeState=$tree" ${sha:+"gitCommit=$sha"}; do
        key=${kv%%=*} val=${kv#*=}
        ldflags+=" -X k8s.io/component-base/version.$key=$val"
        ldflags+=" -X k8s.io/client-go/pkg/version.$key=$val"
    done
    local tmp
    new_tmp && tmp=$NEW_TMP
    log "building $name $KUBERNETES_VERSION"
    # Flags as in hack/lib/golang.sh for a non-debug static build.
    (cd "$dir" && run_go build -p "$GO_P" -trimpath -tags selinux,notest,grpcnotrace \
        -ldflags "$ldflags" -o "$tmp" "k8s.io/kubernetes/cmd/$name")
    if [[ $name == kubectl ]]; then
        # kubectl has no --version flag; `version --client` reads no kubeconfig.
        local out_text
        out_text=$("$tmp" version --client 2>&1) || die "$tmp version --client failed: $out_text"
        [[ $out_text == *"Client Version: $KUBERNETES_VERSION"* ]] ||
            die "kubectl version --client printed '$out_text', expected $KUBERNETES_VERSION"
        mv -f "$tmp" "$out"
        log "built $out ($KUBERNETES_VERSION)"
        return
    fi
    install_checked "$tmp" "$out" "Kubernetes $KUBERNETES_VERSION"
}

# ---- Bitnami Sealed Secrets --------------------------------------------------------
# Their go.mod has no replace directives, so `go install pkg@version` builds with
# upstream's own go.mod and go.sum, exactly as a release does. main.VERSION is the tag
# with its leading v, as the released binaries print it (`kubeseal version: v0.36.6`)
# and as Bitnami's integration suite expects (`^kubeseal version: v[0-9]+...`).
build_sealed_secrets() {
    local cmd=$1 out=$2 expected=$3
    log "building sealed-secrets $cmd $SEALED_SECRETS_VERSION"
    go_install "github.com/bitnami-labs/sealed-secrets/cmd/$cmd@$SEALED_SECRETS_VERSION" \
        "-s -w -X main.VERSION=$SEALED_SECRETS_VERSION"
    install_checked "$NEW_TMP" "$out" "$expected"
}

# Bitnami's integration suite: Ginkgo specs in the module's integration/ package,
# behind the build tag `integration`. `go test -c` in the module's own directory (from
# the module cache) builds them with upstream's go.mod and go.sum; the binary takes
# -kubeconfig, -kubeseal-bin, -controller-bin and -namespace, plus Ginkgo's flags.
# bitnami_module_dir: the Bitnami module's directory in the module cache (downloaded
# if needed).
bitnami_module_dir() {
    module_dir "github.com/bitnami-labs/sealed-secrets@$SEALED_SECRETS_VERSION"
}

# module_dir MODULE@VERSION: the module's directory in the module cache (downloaded,
# and checked against the checksum database, if needed).
module_dir() {
    need_go
    (cd "$CACHE" && go mod download -json "$1" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
}

build_bitnami_integration() {
    local out=$1 dir tmp
    dir=$(bitnami_module_dir)
    [[ -d $dir/integration ]] || die "no integration/ in sealed-secrets $SEALED_SECRETS_VERSION"
    new_tmp && tmp=$NEW_TMP
    log "building the sealed-secrets integration suite $SEALED_SECRETS_VERSION"
    (cd "$dir" && run_go test -c -p "$GO_P" -trimpath -tags integration \
        -ldflags "-s -w" -o "$tmp" ./integration)
    # The binary lists its Go test, and its usage names the suite's own flags.
    local listed usage
    listed=$("$tmp" -test.list '.*' 2>&1) || die "the integration suite binary does not run: $listed"
    usage=$("$tmp" -help 2>&1 || true)
    [[ $listed == *TestE2e* && $usage == *-kubeseal-bin* ]] ||
        die "$tmp is not the integration suite (test list: $listed)"
    mv -f "$tmp" "$out"
    log "built $out"
}

# Bitnami's CRD, as its Helm chart installs it (its status schema prunes fields it does
# not know): the tests check what sealant's status and key inventory do under it.
# Bitnami's Helm chart (helm/sealed-secrets, v2.18.x in this module), a directory: its
# values.yaml is the values file a Bitnami user brings to charts/sealant.
copy_bitnami_chart() {
    local out=$1 dir tmp
    dir=$(bitnami_module_dir)
    [[ -f $dir/helm/sealed-secrets/Chart.yaml ]] || die "no chart in sealed-secrets $SEALED_SECRETS_VERSION"
    mkdir -p "$BIN"
    tmp=$(mktemp -d "$BIN/.tmp.XXXXXX")
    TMPFILES+=("$tmp")
    cp -R "$dir/helm/sealed-secrets/." "$tmp/" && chmod -R u+w,go+rX "$tmp"
    mv -f "$tmp" "$out"
    log "copied $out"
}

copy_bitnami_crd() {
    local out=$1 dir tmp
    dir=$(bitnami_module_dir)
    local crd=$dir/helm/sealed-secrets/crds/bitnami.com_sealedsecrets.yaml
    [[ -f $crd ]] || die "no chart CRD in sealed-secrets $SEALED_SECRETS_VERSION"
    new_tmp && tmp=$NEW_TMP
    cp "$crd" "$tmp" && chmod 0644 "$tmp"
    mv -f "$tmp" "$out"
    log "copied $out"
}

# ---- age -------------------------------------------------------------------------
# filippo.io/age has no replace directives either, so `go install pkg@version` builds
# with upstream's go.mod and go.sum. Its commands print debug.BuildInfo's main module
# version (the tag, with its v) unless main.Version is set at link time; it is not.
build_age() {
    local cmd=$1 out=$2
    log "building age $cmd $AGE_VERSION"
    go_install "filippo.io/age/cmd/$cmd@$AGE_VERSION" "-s -w"
    install_checked "$NEW_TMP" "$out" "$AGE_VERSION"
}

# ---- helm ------------------------------------------------------------------------
# helm.sh/helm/v4 has no replace directives, so `go install pkg@version` builds with
# upstream's go.mod and go.sum. Its version is a link-time variable (upstream's
# Makefile sets it the same way); without it `helm version` prints only "v4.3".
build_helm() {
    local out=$1 printed
    log "building helm $HELM_VERSION"
    go_install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" \
        "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
    printed=$("$NEW_TMP" version --template '{{.Version}}' 2>&1) || die "helm version failed: $printed"
    [[ $printed == "$HELM_VERSION" ]] || die "helm version printed '$printed', expected '$HELM_VERSION'"
    mv -f "$NEW_TMP" "$out"
    log "built $out ($printed)"
}

# ---- Container images for the test node ---------------------------------------------
# The node (tests/src/node.rs) runs Pods, so containerd needs a sandbox ("pause") image,
# and the migration drill runs Bitnami's chart with Bitnami's controller as an image.
# No registry is reachable, so both are assembled here from scratch with buildah, as
# scripts/image.sh assembles ours, and written as docker archives that
# `ctr images import` loads. Bump IMAGE_RECIPE when what goes into them changes.
IMAGE_RECIPE=1
PAUSE_REF=localhost/sealant-e2e/pause:3.10
BITNAMI_REF=localhost/sealant-e2e/sealed-secrets-controller:$SEALED_SECRETS_VERSION

# build_image OUT REF ROOTFS ENTRYPOINT USER: an image of ROOTFS alone (no base), stamped
# with time 0 so rebuilding gives the same archive.
build_image() {
    local out=$1 ref=$2 rootfs=$3 entrypoint=$4 user=$5 store=$CACHE/buildah ctr tmp
    command -v buildah >/dev/null || die "buildah is missing (scripts/system-deps.sh installs it)"
    buildah_() {
        STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot \
            buildah --root "$store/root" --runroot "$store/run" "$@"
    }
    ctr=$(buildah_ from scratch)
    buildah_ copy --quiet "$ctr" "$rootfs" / >/dev/null
    buildah_ config --entrypoint "$entrypoint" --user "$user" --env PATH=/usr/local/bin:/ \
        --created-by sealant-peers "$ctr"
    buildah_ commit --quiet --timestamp 0 --rm "$ctr" "$ref" >/dev/null
    new_tmp && tmp=$NEW_TMP
    rm -f "$tmp"
    buildah_ push --quiet "$ref" "docker-archive:$tmp:$ref"
    buildah_ rmi --force "$ref" >/dev/null
    chmod 0644 "$tmp"
    mv -f "$tmp" "$out"
    log "built $out ($ref)"
}

# The pause program from the Kubernetes module itself (build/pause/linux/pause.c), as
# the upstream pause image has it: static, run as 65535.
build_pause_image() {
    local out=$1 dir src rootfs
    dir=$(module_dir "k8s.io/kubernetes@$KUBERNETES_VERSION")
    src=$dir/build/pause/linux/pause.c
    [[ -f $src ]] || die "no build/pause/linux/pause.c in k8s.io/kubernetes $KUBERNETES_VERSION"
    command -v cc >/dev/null || die "a C compiler (cc) is needed for the pause image"
    rootfs=$(mktemp -d "$CACHE/.pause.XXXXXX")
    TMPFILES+=("$rootfs")
    log "building the pause image from $KUBERNETES_VERSION's pause.c"
    cc -Os -Wall -Werror -static -DVERSION="3.10-sealant-e2e" -o "$rootfs/pause" "$src" ||
        die "cannot build pause.c statically (is libc6-dev installed?)"
    strip "$rootfs/pause" 2>/dev/null || true
    touch -h -d @0 "$rootfs/pause" "$rootfs"
    build_image "$out" "$PAUSE_REF" "$rootfs" '["/pause"]' 65535:65535
}

# Bitnami's controller binary (the sealed-secrets-controller peer, static Go) where its
# image has it, /usr/local/bin/controller, as the user its chart runs (1001).
build_bitnami_image() {
    local out=$1 rootfs
    local controller=${TEST_ASSET_SEALED_SECRETS_CONTROLLER:-$BIN/sealed-secrets-controller-$SEALED_SECRETS_VERSION-r2}
    [[ -x $controller ]] ||
        build_sealed_secrets controller "$controller" "controller version: $SEALED_SECRETS_VERSION"
    rootfs=$(mktemp -d "$CACHE/.bitnami-image.XXXXXX")
    TMPFILES+=("$rootfs")
    mkdir -p "$rootfs/usr/local/bin"
    cp "$controller" "$rootfs/usr/local/bin/controller"
    find "$rootfs" -exec touch -h -d @0 {} +
    build_image "$out" "$BITNAMI_REF" "$rootfs" '["controller"]' 1001:1001
}

# ---- GitOps health judges ----------------------------------------------------------
# tests/peers/kstatus and tests/peers/argocd-health are small Go programs committed
# with a tidy go.mod (no go.sum, as for the wrappers above: the build list is fixed by
# the go.mod, and every module is checked against the checksum database). Each is
# copied into a wrapper directory in the cache, where `go mod tidy` writes its go.sum;
# a go.mod that tidy would change is an error, so nothing is resolved to "latest".
# The cache name carries the pinned version and a hash of the committed sources, so
# an edited program is rebuilt.

# src_hash NAME: the first 8 hex digits of the SHA-256 of tests/peers/NAME's files.
src_hash() {
    (cd "$PEERS_DIR/$1" && cat go.mod main.go | sha256sum | cut -c1-8)
}

# build_program NAME OUT LDFLAGS EXPECTED [PATH...]: builds tests/peers/NAME (plus the
# given files or directories, copied beside it) into OUT; `OUT --version` must contain
# EXPECTED.
build_program() {
    local name=$1 out=$2 ldflags=$3 expected=$4 dir tmp
    shift 4
    need_go
    dir=$WRAPPERS/$name-$(src_hash "$name")
    rm -rf "$dir" && mkdir -p "$dir"
    cp -R "$PEERS_DIR/$name/go.mod" "$PEERS_DIR/$name/main.go" "$@" "$dir/"
    chmod -R u+w "$dir"
    log "building $name ($expected)"
    (cd "$dir" && run_go mod tidy)
    cmp -s "$dir/go.mod" "$PEERS_DIR/$name/go.mod" ||
        die "tests/peers/$name/go.mod is not tidy: run \`go mod tidy\` there (the build list must not float)"
    new_tmp && tmp=$NEW_TMP
    (cd "$dir" && run_go build -p "$GO_P" -trimpath -ldflags "$ldflags" -o "$tmp" .)
    install_checked "$tmp" "$out" "$expected"
}

build_kstatus() {
    grep -q "^[[:space:]]*sigs.k8s.io/cli-utils $KSTATUS_VERSION\$" "$PEERS_DIR/kstatus/go.mod" ||
        die "tests/peers/kstatus/go.mod does not require sigs.k8s.io/cli-utils $KSTATUS_VERSION"
    build_program kstatus "$1" "-s -w" "kstatus sigs.k8s.io/cli-utils $KSTATUS_VERSION"
}

# Argo CD's health check is a Lua file in its Go module. It is taken from the module
# cache (never copied into this repository) and embedded into the program, with Argo
# CD's own test cases for it, which the program runs in gopher-lua at the version Argo
# CD's own go.mod requires.
build_argocd_health() {
    local out=$1 argo custom lua lua_version
    argo=$(module_dir "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION")
    custom=$argo/resource_customizations/bitnami.com/SealedSecret
    lua=$custom/health.lua
    [[ -f $lua && -f $custom/health_test.yaml && -d $custom/testdata ]] ||
        die "no health.lua with its tests for bitnami.com/SealedSecret in argo-cd $ARGOCD_VERSION"
    lua_version=$(awk '$1 == "github.com/yuin/gopher-lua" { print $2 }' "$argo/go.mod")
    [[ -n $lua_version ]] || die "argo-cd $ARGOCD_VERSION's go.mod requires no github.com/yuin/gopher-lua"
    grep -q "github.com/yuin/gopher-lua $lua_version\$" "$PEERS_DIR/argocd-health/go.mod" ||
        die "tests/peers/argocd-health/go.mod must require github.com/yuin/gopher-lua $lua_version, as argo-cd $ARGOCD_VERSION does"
    build_program argocd-health "$out" "-s -w -X main.argoVersion=$ARGOCD_VERSION" \
        "argocd-health argo-cd $ARGOCD_VERSION gopher-lua $lua_version" \
        "$lua" "$custom/health_test.yaml" "$custom/testdata"
}

# ---- Resolution ------------------------------------------------------------------
# resolve PEER: append VAR=path for one peer to LINES, building it if needed.
# (Not run in a subshell, so the lock, the EXIT trap and `die` apply.)
LINES=()
emit() { LINES+=("$(printf '%s=%q' "$1" "$2")"); }
resolve() {
    local peer=$1 var file version asset
    local -a asset_names=("$peer")
    case $peer in
    etcd) var=TEST_ASSET_ETCD version=$ETCD_VERSION ;;
    kube-apiserver) var=TEST_ASSET_KUBE_APISERVER version=$KUBERNETES_VERSION ;;
    kube-controller-manager) var=TEST_ASSET_KUBE_CONTROLLER_MANAGER version=$KUBERNETES_VERSION ;;
    kubeseal) var=TEST_ASSET_KUBESEAL version=$SEALED_SECRETS_VERSION ;;
    sealed-secrets-controller)
        var=TEST_ASSET_SEALED_SECRETS_CONTROLLER version=$SEALED_SECRETS_VERSION
        asset_names+=(controller)
        ;;
    age) var=TEST_ASSET_AGE version=$AGE_VERSION ;;
    age-keygen) var=TEST_ASSET_AGE_KEYGEN version=$AGE_VERSION ;;
    bitnami-integration) var=TEST_ASSET_BITNAMI_INTEGRATION version=$SEALED_SECRETS_VERSION ;;
    bitnami-crd) var=TEST_ASSET_BITNAMI_CRD version=$SEALED_SECRETS_VERSION ;;
    bitnami-chart) var=TEST_ASSET_BITNAMI_CHART version=$SEALED_SECRETS_VERSION ;;
    kubectl) var=TEST_ASSET_KUBECTL version=$KUBERNETES_VERSION ;;
    kstatus) var=TEST_ASSET_KSTATUS version=$KSTATUS_VERSION-$(src_hash kstatus) ;;
    argocd-health) var=TEST_ASSET_ARGOCD_HEALTH version=$ARGOCD_VERSION-$(src_hash argocd-health) ;;
    helm) var=TEST_ASSET_HELM version=$HELM_VERSION ;;
    kubelet) var=TEST_ASSET_KUBELET version=$KUBERNETES_VERSION ;;
    kube-proxy) var=TEST_ASSET_KUBE_PROXY version=$KUBERNETES_VERSION ;;
    kube-scheduler) var=TEST_ASSET_KUBE_SCHEDULER version=$KUBERNETES_VERSION ;;
    pause-image) var=TEST_ASSET_PAUSE_IMAGE version=$KUBERNETES_VERSION-r$IMAGE_RECIPE ;;
    bitnami-image) var=TEST_ASSET_BITNAMI_IMAGE version=$SEALED_SECRETS_VERSION-r$IMAGE_RECIPE ;;
    esac

    # Every peer is a program, except the CRD (a YAML file), the images (archives) and
    # the chart (a directory).
    local test=-x
    [[ $peer == bitnami-crd || $peer == *-image ]] && test=-f
    [[ $peer == bitnami-chart ]] && test=-d
    if [[ -n ${!var:-} ]]; then
        test "$test" "${!var}" || die "$var=${!var} is not a usable $peer (test $test failed)"
        emit "$var" "${!var}"
        return
    fi
    if [[ -n ${SEALANT_TEST_ASSETS:-} ]]; then
        for asset in "${asset_names[@]}"; do
            if test "$test" "$SEALANT_TEST_ASSETS/$asset" &&
                { [[ $test == -d ]] || [[ ! -d $SEALANT_TEST_ASSETS/$asset ]]; }; then
                emit "$var" "$SEALANT_TEST_ASSETS/$asset"
                return
            fi
        done
    fi

    file=$BIN/$peer-$version
    # Bitnami's binaries are built with the v in their version since recipe 2: an
    # older cache entry (without it) is not reused.
    case $peer in
    kubeseal | sealed-secrets-controller) file+=-r2 ;;
    bitnami-crd) file+=.yaml ;;
    *-image) file+=.docker.tar ;;
    esac
    if ! test "$test" "$file"; then
        lock
        if ! test "$test" "$file"; then # another run may have built it while we waited
            case $peer in
            etcd) build_etcd "$file" ;;
            kube-apiserver | kube-controller-manager | kubectl | kubelet | kube-proxy | kube-scheduler)
                build_k8s "$peer" "$file"
                ;;
            kubeseal) build_sealed_secrets kubeseal "$file" "kubeseal version: $version" ;;
            sealed-secrets-controller)
                build_sealed_secrets controller "$file" "controller version: $version"
                ;;
            age | age-keygen) build_age "$peer" "$file" ;;
            bitnami-integration) build_bitnami_integration "$file" ;;
            bitnami-crd) copy_bitnami_crd "$file" ;;
            bitnami-chart) copy_bitnami_chart "$file" ;;
            kstatus) build_kstatus "$file" ;;
            argocd-health) build_argocd_health "$file" ;;
            helm) build_helm "$file" ;;
            pause-image) build_pause_image "$file" ;;
            bitnami-image) build_bitnami_image "$file" ;;
            esac
        fi
    fi
    emit "$var" "$file"
}

# Resolve every peer first and print at the end, so a failed build prints no lines.
for peer in "${PEERS[@]}"; do
    resolve "$peer"
done
printf '%s\n' "${LINES[@]}"
