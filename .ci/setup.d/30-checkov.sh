#!/usr/bin/env bash
# checkov (static analysis of infra/) in its own virtualenv: its many pinned dependencies must not
# meet the project's. tests/unit/infra calls /opt/checkov-venv/bin/checkov.
set -euo pipefail
VENV=/opt/checkov-venv
VERSION=3.3.30
if "$VENV/bin/checkov" --version >/dev/null 2>&1; then
  exit 0
fi
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$VERSION"
"$VENV/bin/checkov" --version
