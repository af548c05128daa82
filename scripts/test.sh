#!/usr/bin/env bash
# Runs every test in the workspace: unit tests, and integration tests against real etcd, the kernel
# (network namespaces, veth, routes, iptables, ipset, VXLAN) and real BGP peers (BIRD, GoBGP).
# Integration tests need root; as root on this kind of machine nothing is skipped.
source "$(dirname "${BASH_SOURCE[0]}")/ensure-env.sh"
cd "$ROOT"
rm -f packages/*/.reports/vitest.json
status=0
pnpm run lint || status=$?
pnpm run typecheck || status=$?
pnpm run test || status=$?
node scripts/test-summary.mjs || status=$?
exit "$status"
