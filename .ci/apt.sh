# Sourced by the setup steps: apt-get that waits for another apt or dpkg (an unattended upgrade,
# a second `make test`) instead of failing. `-o DPkg::Lock::Timeout` makes install wait for
# dpkg's lock, but `apt-get update` still fails at once on the lists lock, so retry that here.
APT_LOCK_WAIT=${APT_LOCK_WAIT:-600}
APT_LOCK_POLL=${APT_LOCK_POLL:-3}

apt_get() {
  local deadline=$((SECONDS + APT_LOCK_WAIT)) err said=0
  err=$(mktemp)
  while true; do
    if DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$APT_LOCK_WAIT" "$@" 2>"$err"; then
      cat "$err" >&2
      rm -f "$err"
      return 0
    fi
    if grep -q "Could not get lock" "$err" && [ "$SECONDS" -lt "$deadline" ]; then
      [ "$said" = 1 ] || echo "apt is busy (another apt or dpkg runs); waiting up to ${APT_LOCK_WAIT} s ..." >&2
      said=1
      sleep "$APT_LOCK_POLL"
      continue
    fi
    cat "$err" >&2
    rm -f "$err"
    return 1
  done
}
