#!/usr/bin/env bash
# Runs every test in the workspace: unit tests, and integration tests against real etcd, the kernel
# (network namespaces, veth, routes, iptables, ipset, VXLAN) and real BGP peers (BIRD, GoBGP).
# Integration tests need root; as root on this kind of machine nothing is skipped. Tests always
# run (never replayed from nx's cache), and the last line counts what really ran.
source "$(dirname "${BASH_SOURCE[0]}")/ensure-env.sh"
cd "$ROOT"
rm -rf packages/*/.reports
export TEST_RUN_STARTED_MS=$(($(date +%s) * 1000))
status=0
pnpm run lint || status=$?
pnpm run typecheck || status=$?
pnpm exec nx run-many -t test --parallel=2 --outputStyle=stream --skip-nx-cache || status=$?
node scripts/test-summary.mjs || status=$?
exit "$status"
