#!/usr/bin/env bash
# Makes sure Prometheus's `promtool` is installed (Debian's `prometheus` package): the test of the
# queries docs/operations.md gives operators evaluates them with `promtool test rules`.
# Idempotent and never fatal: apt's output is shown when the install fails, the other tests still
# run, and that one test fails, saying promtool is missing.
set -uo pipefail
command -v promtool >/dev/null 2>&1 && exit 0
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { $SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends prometheus; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "ensure-promtool: could not install prometheus (for promtool) with apt-get; test/observe/prometheus-queries.test.ts will fail" >&2
fi
exit 0
