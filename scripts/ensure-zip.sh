#!/usr/bin/env bash
# Makes sure Info-ZIP's `zip` is installed: test/ingest/chat/errors.test.ts makes a real
# password-protected export with `zip -e` (ZipCrypto, what users get from `zip -e` and most
# tools' "encrypt" box). Idempotent: nothing happens when it is there; apt's output is shown
# only when the install fails. Best effort: the rest of the tests run without it.
set -euo pipefail
command -v zip >/dev/null 2>&1 && exit 0
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { $SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y zip; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "ensure-zip: could not install zip with apt-get; test/ingest/chat/errors.test.ts will fail" >&2
fi
exit 0
