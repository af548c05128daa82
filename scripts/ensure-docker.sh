#!/usr/bin/env bash
# Makes a Docker engine available for images/ and e2e/ on a Debian machine: installs Debian's
# docker.io and debootstrap when missing (as root), starts dockerd when no daemon answers, and waits
# until it does. A dockerd started here keeps running (later runs reuse it and its layer cache);
# its pid is in /run/calico-ts-dockerd.pid and its log in /var/log/calico-ts-dockerd.log.
# Exits non-zero, saying why, when no engine can be had.
set -euo pipefail

log() { printf '[docker] %s\n' "$*" >&2; }

docker_answers() { command -v docker >/dev/null && docker info >/dev/null 2>&1; }

docker_answers && exit 0

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    log "missing ${missing[*]} (Debian packages; install them as root)"
    exit 1
  fi
  log "installing ${missing[*]}"
  flock /tmp/calico-ts-apt.lock sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${missing[*]} >/dev/null"
fi
docker_answers && exit 0

if [[ $(id -u) -ne 0 ]]; then
  log "no Docker daemon answers and only root can start one"
  exit 1
fi
# One dockerd at a time: another run may be starting it right now.
exec 9>/tmp/calico-ts-dockerd.lock
flock 9
docker_answers && exit 0
log "starting dockerd"
nohup dockerd >/var/log/calico-ts-dockerd.log 2>&1 &
echo $! >/run/calico-ts-dockerd.pid
for _ in $(seq 1 60); do
  docker_answers && exit 0
  kill -0 "$(cat /run/calico-ts-dockerd.pid)" 2>/dev/null || break
  sleep 1
done
log "dockerd did not come up; the end of /var/log/calico-ts-dockerd.log:"
tail -20 /var/log/calico-ts-dockerd.log >&2
exit 1
