#!/bin/sh
# The image `registry.k8s.io/coredns/coredns` in the local image map (e2e/images.json): the suite's
# base manifests run one CoreDNS pod in gateway-conformance-infra, for the UDPRoute tests only
# (profile GATEWAY-UDP, which we do not run). Every Gateway profile's Setup waits for all pods of
# that namespace to be Ready, so the pod must run; this stand-in does nothing but stay up until it
# is stopped. A run of the UDPRoute tests would need a real CoreDNS here.
#
# usage: coredns-stand-in.sh [coredns args, ignored]
trap 'exit 0' TERM INT
while :; do
  sleep 3600 &
  wait $!
done
