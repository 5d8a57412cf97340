#!/usr/bin/env bash
# Makes sure Debian's Chromium is at /usr/bin/chromium for the browser tests (test/ui), which
# drive it with playwright-core. Idempotent and quiet: nothing happens when it is there; apt's
# output is shown only when the install fails. Never `playwright install`: no browser builds are
# downloaded from anywhere but Debian's archive.
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { $SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "ensure-chromium: could not install chromium with apt-get" >&2
  exit 1
fi
[ -x /usr/bin/chromium ] || { echo "ensure-chromium: /usr/bin/chromium is still missing" >&2; exit 1; }
