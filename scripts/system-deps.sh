#!/usr/bin/env bash
# Installs the Debian packages the test suite needs beyond its prerequisites (Rust, Go,
# a C compiler, Python 3 and root), when they are missing:
#   iproute2      `ip`, for the end-to-end suites' network namespace
#   python3-venv  the venvs of scripts/python-env.sh
#   git           `sealant scan --staged/--since` and its pre-commit test
#   buildah       scripts/image.sh assembles the container image with it
#   skopeo        scripts/image.sh reads the image's digest with it
#   prometheus    promtool, which tests the chart's alerting rules (tests/tests/chart.rs)
#   containerd, runc, containernetworking-plugins, iptables, conntrack
#                 the test node that runs the chart's Pods (tests/src/node.rs)
# Each is checked first, so a machine that has them runs no apt-get at all. As root
# with apt-get, the missing ones are installed; otherwise the script names them and
# fails.
set -euo pipefail

missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
command -v git >/dev/null 2>&1 || missing+=(git)
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v containerd >/dev/null 2>&1 || missing+=(containerd)
command -v runc >/dev/null 2>&1 || missing+=(runc)
[[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
command -v conntrack >/dev/null 2>&1 || missing+=(conntrack)

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "system packages: all present"
    exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "system packages: missing ${missing[*]}; install them (as root, with your package manager)" >&2
    exit 1
fi
echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
