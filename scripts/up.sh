#!/usr/bin/env bash
# The main job: a local multi-node calico-ts cluster on this machine (network namespaces as
# hosts): etcd on the lab underlay, calico-node on every node, demo pods wired through the CNI
# plugin, pod-to-pod connectivity checked. Runs in the foreground until Ctrl-C, then removes
# everything it made. Arguments go to `calico cluster up` (e.g. --nodes 5, --check).
source "$(dirname "${BASH_SOURCE[0]}")/ensure-env.sh"
cd "$ROOT"
# The CNI plugin binaries start in ~0.1 s when built (cached by nx), ~0.4 s from source.
pnpm exec nx run @calico-ts/cni:build --outputStyle=static >/dev/null 2>&1 || echo "[setup] CNI plugin build failed; running the plugins from source" >&2
exec node --conditions=@calico-ts/source packages/ctl/src/cli.ts cluster up "$@"
