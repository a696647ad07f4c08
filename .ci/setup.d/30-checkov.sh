#!/usr/bin/env bash
# checkov (static analysis of infra/) in its own virtualenv: its many pinned dependencies must not
# meet the project's. tests/unit/infra calls /opt/checkov-venv/bin/checkov. About two minutes once.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../apt.sh"
VENV=/opt/checkov-venv
VERSION=3.3.30
# Installed at this version already (checking the metadata: `checkov --version` takes seconds).
if [ -x "$VENV/bin/checkov" ] && compgen -G "$VENV/lib/python3*/site-packages/checkov-$VERSION.dist-info" >/dev/null; then
  exit 0
fi
rm -rf "$VENV"
# Debian's python3 makes virtualenvs only with python3-venv installed.
if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
  rm -rf "$VENV"
  apt_get update -qq
  apt_get install -y -qq python3-venv >/dev/null
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$VERSION"
"$VENV/bin/checkov" --version
