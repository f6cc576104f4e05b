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
