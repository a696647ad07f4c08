#!/usr/bin/env bash
# Node.js and npm (Debian's) for TypeScript workflows: the embedded builder installs and builds
# Node projects with them, and the tests run Render's TypeScript SDK. Idempotent.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../apt.sh"
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  exit 0
fi
apt_get update -qq
apt_get install -y -qq --no-install-recommends nodejs npm >/dev/null
node --version
