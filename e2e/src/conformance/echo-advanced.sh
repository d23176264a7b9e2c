#!/bin/sh
# The entrypoint of the Gateway API conformance image `echo-advanced` in the local image map
# (e2e/images.json): Istio's echo server, as the image runs it. The image ships its certificate at
# /cert.crt and /cert.key; a local container shares the host's file system, so those two paths in
# the manifest's args are rewritten to the copies tools/install-deps.d/gateway-conformance.sh keeps.
#
# usage: echo-advanced.sh <echo-advanced dir> [server args...]
dir="$1"
shift
for a; do
  shift
  case "$a" in
    --crt=/cert.crt) a="--crt=$dir/cert.crt" ;;
    --key=/cert.key) a="--key=$dir/cert.key" ;;
  esac
  set -- "$@" "$a"
done
exec "$dir/bin/server" "$@"
