#!/usr/bin/env bash
# Host settings the sandbox wants (docs/deployment.md, "Host settings"): expedited RCU grace
# periods, so an attempt joins its cgroup in a fraction of a millisecond instead of waiting
# 10-20 ms for a normal grace period (cgroup v1, or cgroup2 without favordynmods).
set -euo pipefail
setting=/sys/kernel/rcu_expedited
if [ "$(cat "$setting" 2>/dev/null)" = "1" ]; then
  exit 0
fi
if [ -w "$setting" ] && echo 1 >"$setting" 2>/dev/null; then
  echo "$setting = 1"
else
  echo "note: $setting is not writable here; each sandboxed attempt waits for a grace period to join its cgroup" >&2
fi
