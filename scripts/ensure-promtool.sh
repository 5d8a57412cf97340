#!/usr/bin/env bash
# Makes sure Prometheus's `promtool` is installed (Debian's `prometheus` package): the test of the
# queries docs/operations.md gives operators evaluates them with `promtool test rules`.
# Idempotent; apt's output is shown only when the install fails (that test then fails, saying so).
set -euo pipefail
command -v promtool >/dev/null 2>&1 && exit 0
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { $SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends prometheus; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "ensure-promtool: could not install prometheus (for promtool) with apt-get" >&2
  exit 1
fi
