#!/usr/bin/env bash
# Builds the Debian bookworm base image every calico-ts image starts FROM, locally: debootstrap
# (minbase variant) from Debian's archive, then `docker import`. No registry is involved.
#
# The image is tagged calico-ts/base:bookworm-<key>, where <key> hashes everything that decides its
# content (suite, mirror, variant, this script). When an image with that tag exists the build is
# skipped, so it runs once per machine (or per CI cache) and not on every `nx run-many -t image`.
# Prints the image reference on stdout; progress goes to stderr.
#
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), BASE_SUITE (default bookworm),
# BASE_REPOSITORY (default calico-ts/base).
set -euo pipefail

SUITE="${BASE_SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
REPOSITORY="${BASE_REPOSITORY:-calico-ts/base}"
VARIANT=minbase
# Fixed timestamps in the imported tarball: with the same debootstrap output, the layer is the same.
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1767225600}" # 2026-01-01T00:00:00Z

log() { printf '[base] %s\n' "$*" >&2; }

self="${BASH_SOURCE[0]}"
key="$(printf '%s\n' "$SUITE" "$MIRROR" "$VARIANT" "$SOURCE_DATE_EPOCH" | cat - "$self" | sha256sum | cut -c1-16)"
ref="$REPOSITORY:$SUITE-$key"

if docker image inspect "$ref" >/dev/null 2>&1; then
  log "$ref is up to date"
  printf '%s\n' "$ref"
  exit 0
fi

for tool in debootstrap docker tar; do
  command -v "$tool" >/dev/null || { log "missing $tool (Debian package: ${tool/docker/docker.io})"; exit 1; }
done
[[ $(id -u) -eq 0 ]] || { log "debootstrap needs root"; exit 1; }

root="$(mktemp -d /tmp/calico-ts-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT
start=$SECONDS
log "debootstrap --variant=$VARIANT $SUITE from $MIRROR"
debootstrap --variant="$VARIANT" "$SUITE" "$root/rootfs" "$MIRROR" >"$root/debootstrap.log" 2>&1 || {
  tail -20 "$root/debootstrap.log" >&2
  exit 1
}

# What a container never needs: package caches, docs, man pages, translations, logs.
rm -rf "$root/rootfs"/var/cache/apt/archives/*.deb "$root/rootfs"/var/lib/apt/lists/* \
  "$root/rootfs"/usr/share/doc/* "$root/rootfs"/usr/share/man/* "$root/rootfs"/usr/share/info/* \
  "$root/rootfs"/usr/share/locale/* \
  "$root/rootfs"/var/log/*.log "$root/rootfs"/var/cache/debconf/*-old "$root/rootfs"/var/lib/dpkg/*-old
# Keep them out when product images install packages on top.
cat >"$root/rootfs/etc/dpkg/dpkg.cfg.d/01-calico-ts-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
CFG
cat >"$root/rootfs/etc/apt/apt.conf.d/01-calico-ts-slim" <<'CFG'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
CFG
printf 'deb %s %s main\n' "$MIRROR" "$SUITE" >"$root/rootfs/etc/apt/sources.list"

tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --numeric-owner --xattrs -C "$root/rootfs" -cf - . |
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    --message "debootstrap --variant=$VARIANT $SUITE $MIRROR" \
    - "$ref" >/dev/null
log "built $ref in $((SECONDS - start)) s"
printf '%s\n' "$ref"
