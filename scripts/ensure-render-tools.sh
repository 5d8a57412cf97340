#!/usr/bin/env bash
# Makes sure MuPDF's `mutool` and poppler's `pdftoppm`/`pdftotext` are installed, for the
# render benchmarks (bench/render.ts, bench/pipeline-pages.ts) that measure docbatch against
# them. Idempotent: nothing happens when both are there; apt's output is shown only when the
# install fails (the benchmarks then skip the missing tool, saying so).
set -euo pipefail
command -v mutool >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1 && exit 0
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { $SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y mupdf-tools poppler-utils; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "ensure-render-tools: could not install mupdf-tools and poppler-utils with apt-get" >&2
  exit 1
fi
