#!/usr/bin/env bash
# The local Node base image conveyor-node-base:bookworm for the BuildKit tests of Node projects:
# conveyor-base:bookworm (20-docker.sh) with Debian's nodejs and npm, since no registry image can
# be pulled here. Built once per machine (~4 min) and saved under /var/cache/conveyor, so a new
# Docker daemon loads it in seconds. Idempotent.
set -euo pipefail

DOCKER=/usr/bin/docker
CACHE=/var/cache/conveyor
BASE_IMAGE=conveyor-base:bookworm
NODE_IMAGE=conveyor-node-base:bookworm
NODE_TAR=$CACHE/conveyor-node-base-bookworm.tar
mkdir -p "$CACHE"

if "$DOCKER" image inspect "$NODE_IMAGE" >/dev/null 2>&1; then
  exit 0
fi
if [ -s "$NODE_TAR" ]; then
  "$DOCKER" load -q -i "$NODE_TAR" >/dev/null
  exit 0
fi
# its own empty context: the Dockerfile copies nothing in
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
DOCKER_BUILDKIT=1 "$DOCKER" build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" \
  -f "$(dirname "${BASH_SOURCE[0]}")/../node-base.Dockerfile" -t "$NODE_IMAGE" "$context" >/dev/null
"$DOCKER" save -o "$NODE_TAR.tmp" "$NODE_IMAGE"
mv "$NODE_TAR.tmp" "$NODE_TAR"
