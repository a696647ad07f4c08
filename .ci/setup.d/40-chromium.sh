#!/usr/bin/env bash
# Debian's Chromium for the dashboard's browser tests (Playwright drives /usr/bin/chromium;
# no browser is downloaded at test time).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../apt.sh"
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
apt_get update -qq
apt_get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version
