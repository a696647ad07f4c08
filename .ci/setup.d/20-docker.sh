#!/usr/bin/env bash
# Docker for the container tests: Debian's docker.io with dockerd running (overlay2), trixie's
# docker-buildx plugin, and the local base image conveyor-base:bookworm (no registry is reachable,
# so it is made with debootstrap once per machine and its tarball cached under /var/cache/conveyor).
# Idempotent: each step is skipped when its result is already there.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../apt.sh"

DOCKER=/usr/bin/docker # /usr/local/bin/docker may be a client-only CLI earlier on PATH
CACHE=/var/cache/conveyor
BASE_IMAGE=conveyor-base:bookworm
BASE_TAR=$CACHE/conveyor-base-bookworm.tar
DOCKERD_LOG=/var/log/conveyor-dockerd.log
mkdir -p "$CACHE"

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    apt_get update -qq
    apt_updated=1
  fi
  apt_get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [ ! -x /usr/sbin/dockerd ] || [ ! -x "$DOCKER" ]; then
  apt_install docker.io
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  apt_install debootstrap
fi

if ! "$DOCKER" info >/dev/null 2>&1; then
  # no init system to rely on here: run it detached, logging to a file
  setsid nohup /usr/sbin/dockerd --storage-driver=overlay2 >>"$DOCKERD_LOG" 2>&1 </dev/null &
  for _ in $(seq 1 150); do
    "$DOCKER" info >/dev/null 2>&1 && break
    sleep 0.2
  done
  if ! "$DOCKER" info >/dev/null 2>&1; then
    echo "dockerd did not answer within 30 s; see $DOCKERD_LOG" >&2
    tail -n 20 "$DOCKERD_LOG" >&2 || true
    exit 1
  fi
fi

# bookworm has no docker-buildx; trixie's .deb needs only libc6 >= 2.34. A private apt list keeps
# the system's sources untouched.
if ! "$DOCKER" buildx version >/dev/null 2>&1; then
  A=$CACHE/apt-trixie
  mkdir -p "$A/lists/partial" "$A/cache/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    >"$A/sources.list"
  opts=(-o "Dir::Etc::SourceList=$A/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$A/lists" -o "Dir::Cache=$A/cache")
  deb=$(ls "$A"/docker-buildx_*.deb 2>/dev/null | head -n 1 || true)
  if [ -z "$deb" ]; then
    apt_get "${opts[@]}" update -qq
    chown _apt "$A" # apt downloads as _apt and warns when it cannot write there
    (cd "$A" && apt_get "${opts[@]}" download docker-buildx >/dev/null)
    deb=$(ls "$A"/docker-buildx_*.deb | head -n 1)
  fi
  # dpkg has no lock timeout of its own; another install may be running on this machine
  for _ in $(seq 1 300); do
    dpkg -i "$deb" >/dev/null 2>"$A/dpkg.err" && break
    grep -q 'lock' "$A/dpkg.err" || { cat "$A/dpkg.err" >&2; exit 1; }
    sleep 1
  done
fi

if ! "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  if [ ! -s "$BASE_TAR" ]; then
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
      bookworm "$root" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1 || {
      tail -n 20 "$CACHE/debootstrap.log" >&2
      exit 1
    }
    tar -C "$root" --exclude='./var/cache/apt/archives/*.deb' --exclude='./var/lib/apt/lists/*' \
      -c . >"$BASE_TAR.tmp"
    mv "$BASE_TAR.tmp" "$BASE_TAR"
    rm -rf "$root"
    trap - EXIT
  fi
  "$DOCKER" import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' \
    "$BASE_TAR" "$BASE_IMAGE" >/dev/null
fi
