#!/bin/sh
# Container runtimes mount /proc/sys read-only unless a container is privileged, and Felix writes
# forwarding and per-interface sysctls there. calico-node runs with SYS_ADMIN instead, which is
# enough to remount it writable (for this container's mount namespace only).
if [ ! -w /proc/sys/net/ipv4/ip_forward ]; then
  mount -o remount,rw /proc/sys || echo "calico-node: /proc/sys is read-only and cannot be remounted (needs CAP_SYS_ADMIN)" >&2
fi
# Node options as in @calico-ts/lab's CALICO_NODE_FLAGS (a small young generation; docs/benchmarks.md).
# dist/bin.js is calico-node as one bundle (packages/node/tsup.config.ts); /app/node_modules
# supplies the native addons it leaves out (koffi, netlink).
exec /usr/local/bin/node --max-semi-space-size=2 /app/dist/bin.js "$@"
