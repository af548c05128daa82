#!/usr/bin/env bash
# The main job. For now: start an etcd, apply a sample IP pool and policy with the `calico` CLI,
# and print them back. (It becomes `calico cluster up`, the local multi-node lab, as that lands.)
source "$(dirname "${BASH_SOURCE[0]}")/ensure-env.sh"
cd "$ROOT"

work=$(mktemp -d /tmp/calico-ts-up.XXXXXX)
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
peer=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
etcd --name up --data-dir "$work/etcd" --log-level error \
  --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
  --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "up=http://127.0.0.1:$peer" >"$work/etcd.log" 2>&1 &
etcd_pid=$!
cleanup() { kill "$etcd_pid" 2>/dev/null; wait "$etcd_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

for _ in $(seq 100); do
  etcdctl --endpoints "http://127.0.0.1:$port" endpoint health >/dev/null 2>&1 && break
  sleep 0.1
done

export DATASTORE_TYPE=etcdv3 ETCD_ENDPOINTS="http://127.0.0.1:$port"
calico() { node --conditions=@calico-ts/source packages/ctl/src/cli.ts "$@"; }

echo "== etcd running at $ETCD_ENDPOINTS (pid $etcd_pid)"
echo "== calico apply -f examples/quickstart.yaml"
calico apply -f examples/quickstart.yaml
echo "== calico get ippools -o wide"
calico get ippools -o wide
echo "== calico get networkpolicies -A"
calico get networkpolicies -A
echo "== calico get networkpolicy allow-frontend-to-backend -n shop -o yaml"
calico get networkpolicy allow-frontend-to-backend -n shop -o yaml
