#!/usr/bin/env bash
# The main job: a local 3-node calico-ts cluster on this machine (network namespaces as hosts),
# left running in the background under its own supervisor. Two namespaces get a pod on every node,
# the matrix shows every pod reaching every other, a policy isolates one namespace, and the matrix
# shows the cells it denies. Arguments go to `calico cluster up` (e.g. --encapsulation vxlan,
# --name lab2); `--check` as the first argument removes the cluster again at the end.
source "$(dirname "${BASH_SOURCE[0]}")/ensure-env.sh"
cd "$ROOT"
check=0
if [[ "${1:-}" == --check ]]; then check=1; shift; fi
# The CNI plugin binaries start in ~0.1 s when built (cached by nx), ~0.4 s from source; calico-node
# runs its build (dist/bin.js, as the images do) when it is fresh, else from source.
pnpm exec nx run-many -t build -p @calico-ts/cni @calico-ts/node --outputStyle=static >/dev/null 2>&1 || echo "[setup] build failed; running the CNI plugins and calico-node from source" >&2
calico() { node --conditions=@calico-ts/source "$ROOT/packages/ctl/src/cli.ts" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

name=calico
for ((i = 1; i <= $#; i++)); do [[ "${!i}" == --name ]] && { j=$((i + 1)); name="${!j}"; }; done
# A cluster of that name left from an earlier run goes first (nothing happens when there is none).
calico cluster down --name "$name" >/dev/null

step "calico cluster up --nodes 3 --encapsulation none $*"
calico cluster up --nodes 3 --encapsulation none "$@"

step "two namespaces, a pod on every node in each (real CNI ADD; listeners on tcp/80 and udp/53)"
calico cluster namespace add frontend --labels tier=frontend
calico cluster namespace add backend --labels tier=backend
pids=()
for n in 1 2 3; do
  calico cluster pod add "n$n" "frontend/web-$n" --labels app=web --serve tcp:80,udp:53 & pids+=($!)
  calico cluster pod add "n$n" "backend/db-$n" --labels app=db --serve tcp:80,udp:53 & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

step "calico node status $name-n1 (its BGP sessions)"
calico node status "$name-n1"

step "calico cluster matrix (every pod to every pod on tcp/80)"
calico cluster matrix --retry-for 30

step "calico apply -f examples/cluster/isolate-backend.yaml (backend accepts only backend)"
calico apply -f examples/cluster/isolate-backend.yaml
calico cluster probe frontend/web-1 backend/db-2 tcp/80 --until denied >/dev/null

step "calico cluster matrix (frontend → backend is now denied)"
calico cluster matrix

if ((check)); then
  step "calico cluster down"
  calico cluster down
  exit 0
fi
cat <<HINTS

The cluster keeps running in the background. Explore it from any shell ("calico" is on PATH):
  calico cluster status                        nodes, pids, readiness, restarts, BGP sessions, etcd
  calico get workloadendpoints -A -o wide      what the CNI plugin and the lab wrote
  calico policy explain --from frontend/web-1 --to backend/db-2 --port tcp/80
  calico cluster probe backend/db-1 backend/db-3 udp/53
  calico cluster exec frontend/web-1 -- ip route
  calico cluster pod add n2 frontend/web-9 --labels app=web --serve tcp:80
  calico cluster logs n1
Tear it down (every namespace, process and file it made):
  calico cluster down
HINTS
