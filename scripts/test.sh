#!/usr/bin/env bash
# The test command (README Quickstart, `npm test`, .ci/run): typecheck, then every test file
# against a real Redis on 127.0.0.1:6379.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-redis.sh
bash scripts/ensure-chromium.sh
bash scripts/ensure-docker-compose.sh
bash scripts/ensure-promtool.sh
bash scripts/ensure-zip.sh
npx tsc -p .
npx vitest run "$@"
