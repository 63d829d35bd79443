#!/usr/bin/env bash
# `npm run bench [-- flags]`: installs what is missing (the gateway's dependencies, then the
# peers of bench/package.json with `npm ci --prefix bench`), builds, and runs every section.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ]; then
  npm ci
fi
if [ ! -f bench/node_modules/.package-lock.json ] || [ bench/package-lock.json -nt bench/node_modules/.package-lock.json ]; then
  npm ci --prefix bench
fi
npm run build
# --expose-gc: the throughput section collects the set-up's garbage before each timed run.
exec node --expose-gc dist/bench/run.js "$@"
