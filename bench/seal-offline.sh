#!/usr/bin/env bash
# Offline sealing of one Secret with --cert: sealant against Bitnami's kubeseal.
# docs/design.md target: sealant takes at most 1/5 of kubeseal's wall time.
#
# Usage: bench/seal-offline.sh            (builds sealant --release and the peers if needed)
# Needs hyperfine (Debian package `hyperfine`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

command -v hyperfine >/dev/null || { echo "error: hyperfine is missing (apt-get install hyperfine)" >&2; exit 1; }
eval "$(tests/peers/build.sh kubeseal)"
cargo build --quiet --release -p sealant-cli --bin sealant
target=${CARGO_TARGET_DIR:-$root/target}
sealant="$target/release/sealant"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
openssl req -x509 -newkey rsa:4096 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
  -subj /CN=bench -days 30 2>/dev/null
cat > "$work/secret.yaml" <<'YAML'
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: prod
stringData:
  username: admin
  password: hunter2
  url: postgres://admin:hunter2@db.prod.svc:5432/app
YAML

"$sealant" --version
"$TEST_ASSET_KUBESEAL" --version
hyperfine --warmup 5 --runs 50 -N --export-markdown "$work/result.md" \
  --command-name sealant "$sealant --cert $work/cert.pem -f $work/secret.yaml" \
  --command-name kubeseal "$TEST_ASSET_KUBESEAL --cert $work/cert.pem -f $work/secret.yaml"
cat "$work/result.md"
