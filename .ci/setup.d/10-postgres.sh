#!/usr/bin/env bash
# PostgreSQL on 127.0.0.1:5432 (user postgres, trust): started if this machine has it stopped.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../apt.sh"
if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  exit 0
fi
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  apt_get update -qq
  apt_get install -y -qq postgresql >/dev/null
fi
version=$(ls /etc/postgresql | sort -V | tail -n 1)
pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
for _ in $(seq 1 50); do pg_isready -h 127.0.0.1 -p 5432 -q && exit 0; sleep 0.2; done
echo "PostgreSQL did not start" >&2
exit 1
