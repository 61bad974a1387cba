#!/usr/bin/env bash
# Regenerates the JavaScript descriptors of demo.proto and google/rpc/error_details.proto
# (protoc-gen-es, target js+dts) with the buf binary that the npm package @bufbuild/buf
# ships: no protoc, nothing downloaded. Writes demo/web/src/gen/ (the page's) and the same
# files to tests/peers/web/gen/ (the Node clients' and server's); both are committed.
#
#   cd demo/web && npm ci && ./gen.sh
set -euo pipefail
cd "$(dirname "$0")"
[ -x node_modules/.bin/buf ] || { echo "gen.sh: run 'npm ci' in demo/web first" >&2; exit 1; }
rm -rf src/gen
node_modules/.bin/buf generate ../../proto \
  --path ../../proto/demo.proto \
  --path ../../proto/google/rpc/error_details.proto \
  --template buf.gen.yaml
peer=../../tests/peers/web/gen
# Only the generated descriptors: build.sh keeps grpc_web_check.js there too.
rm -rf "$peer"/*_pb.js "$peer"/*_pb.d.ts "$peer"/google
mkdir -p "$peer"
cp -r src/gen/. "$peer"/
find src/gen -type f | sort
