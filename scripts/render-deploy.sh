#!/usr/bin/env bash
# Renders deploy/rbac.yaml and deploy/controller.yaml from the Helm chart
# (charts/sealant, default values, in kube-system), so `kubectl apply -k deploy/` and
# `helm install` install the same objects. tests/tests/chart.rs renders them again and
# fails when the committed files differ.
#
# Usage: scripts/render-deploy.sh [OUT_DIR]   (default: deploy/)
# helm is the pinned test peer (tests/peers/build.sh helm), or TEST_ASSET_HELM.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/deploy}
helm=${TEST_ASSET_HELM:-}
if [[ -z $helm ]]; then
    line=$("$root/tests/peers/build.sh" helm)
    eval "$line"
    helm=$TEST_ASSET_HELM
fi

rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
# A fixed Kubernetes version, so the output does not depend on the machine.
"$helm" template sealant "$root/charts/sealant" --namespace kube-system \
    --kube-version v1.34.10 >"$rendered"

mkdir -p "$out"
# One document per `---`: RBAC objects go to rbac.yaml, the rest to controller.yaml,
# each in the order helm renders them.
awk -v rbac="$out/rbac.yaml.tmp" -v rest="$out/controller.yaml.tmp" '
    function flush() {
        if (doc == "") return
        file = (doc ~ /\nkind: (ClusterRole|ClusterRoleBinding|Role|RoleBinding)\n/) ? rbac : rest
        printf "---%s", doc > file
        doc = ""
    }
    BEGIN {
        header = "# Generated from charts/sealant by scripts/render-deploy.sh (default values,\n" \
                 "# namespace kube-system): edit the chart, then run the script. A test fails\n" \
                 "# when this file differs from the chart.\n"
        printf "%s", header > rbac
        printf "%s", header > rest
    }
    /^---$/ { flush(); next }
    { doc = doc "\n" $0 }
    END { flush(); printf "\n" > rbac; printf "\n" > rest }
' "$rendered"
mv -f "$out/rbac.yaml.tmp" "$out/rbac.yaml"
mv -f "$out/controller.yaml.tmp" "$out/controller.yaml"
