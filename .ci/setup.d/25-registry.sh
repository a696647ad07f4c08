#!/usr/bin/env bash
# A local image registry on 127.0.0.1:5000 (Debian's docker-registry) for the BuildKit tests:
# images and their inline cache are pushed there. Docker trusts 127.0.0.0/8 over plain HTTP.
# Idempotent: installs once, starts only when nothing answers on the port.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../apt.sh"

ADDR=127.0.0.1:5000
LOG=/var/log/conveyor-registry.log
STORE=/var/lib/conveyor-registry
CONFIG=/etc/conveyor-registry.yml

if ! command -v docker-registry >/dev/null 2>&1; then
  apt_get update -qq
  apt_get install -y -qq \
    --no-install-recommends docker-registry >/dev/null
fi

# The package's config asks for htpasswd auth; a test registry on loopback needs none.
cat >"$CONFIG.tmp" <<YAML
version: 0.1
storage:
  filesystem:
    rootdirectory: $STORE
  delete:
    enabled: true
http:
  addr: $ADDR
YAML
mv "$CONFIG.tmp" "$CONFIG"

if ! curl -fsS "http://$ADDR/v2/" >/dev/null 2>&1; then
  mkdir -p "$STORE"
  # no init system to rely on: run it detached, logging to a file
  setsid nohup docker-registry serve "$CONFIG" >>"$LOG" 2>&1 </dev/null &
  for _ in $(seq 1 100); do
    curl -fsS "http://$ADDR/v2/" >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -fsS "http://$ADDR/v2/" >/dev/null || { tail -n 20 "$LOG" >&2; exit 1; }
fi
