#!/usr/bin/env bash
# Builds the demo page into dist/ (committed: demo-server --web embeds dist/index.html and
# dist/app.js): src/app.js and its imports bundled and minified by the pinned esbuild,
# src/index.html copied; and tests/peers/web/gen/grpc_web_check.js (check/).
#
#   cd demo/web && npm ci && ./build.sh      (./gen.sh first if proto/demo.proto changed)
set -euo pipefail
cd "$(dirname "$0")"
[ -x node_modules/.bin/esbuild ] || { echo "build.sh: run 'npm ci' in demo/web first" >&2; exit 1; }
mkdir -p dist
node_modules/.bin/esbuild src/app.js --bundle --minify --format=esm --target=es2020 \
  --legal-comments=none --charset=utf8 --log-level=warning --outfile=dist/app.js
cp src/index.html dist/index.html
# Not the page: the gRPC-Web (official runtime) check that tests/peers/web/browser.mjs
# injects into it, committed there.
node_modules/.bin/esbuild check/grpc_web_check.js --bundle --minify --format=iife --target=es2020 \
  --legal-comments=none --charset=utf8 --log-level=warning \
  --outfile=../../tests/peers/web/gen/grpc_web_check.js
wc -c dist/index.html dist/app.js ../../tests/peers/web/gen/grpc_web_check.js
