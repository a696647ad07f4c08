#!/usr/bin/env bash
# Debian's Chromium for the dashboard's browser tests (Playwright drives /usr/bin/chromium;
# no browser is downloaded at test time).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version
