#!/usr/bin/env bash
# The main job: a local multi-node calico-ts cluster on this machine (network namespaces as
# hosts): etcd on the lab underlay, calico-node on every node, demo pods wired through the CNI
# plugin, pod-to-pod connectivity checked. Runs in the foreground until Ctrl-C, then removes
# everything it made. Arguments go to `calico cluster up` (e.g. --nodes 5, --check).
source "$(dirname "${BASH_SOURCE[0]}")/ensure-env.sh"
cd "$ROOT"
exec node --conditions=@calico-ts/source packages/ctl/src/cli.ts cluster up "$@"
