#!/usr/bin/env bash
# Makes the two base images the compose deployment names, from Debian's own
# packages, on a machine that cannot pull images (no registry):
#
#   debian:bookworm-slim   the runtime base the Dockerfile names: a minimal
#                          bookworm root filesystem by `debootstrap`, plus
#                          ca-certificates (Kraken's TLS), `docker import`ed;
#   postgres:15-bookworm   the image docker-compose.yml names by default:
#                          Debian's postgresql-15 in a second debootstrap
#                          root, with deploy/postgres's entrypoint (the same
#                          POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB /
#                          PGDATA contract as the official image).
#
# Where images can be pulled, none of this is needed: the official images
# carry the same tags. Both images are labelled `org.healgrid.local-base`,
# so `docker images --filter label=org.healgrid.local-base` tells them apart.
#
# Cache: the root filesystems are kept as tarballs under
# ${HEALGRID_CACHE:-$HOME/.cache/healgrid}; an image that already exists with
# the label is left alone, so a warm run costs seconds. `--rebuild` starts
# over. Needs root (debootstrap) and Debian's `debootstrap` (installed from
# Debian's packages when missing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${HEALGRID_CACHE:-$HOME/.cache/healgrid}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
RUNTIME_TAG="${RUNTIME_BASE:-debian:bookworm-slim}"
POSTGRES_TAG="${POSTGRES_IMAGE:-postgres:15-bookworm}"
LABEL=org.healgrid.local-base

log() { printf '==> %s\n' "$*"; }

if [ "${1:-}" = "--rebuild" ]; then
  rm -f "$CACHE/$SUITE-runtime.tar" "$CACHE/$SUITE-postgres.tar"
  docker rmi -f "$RUNTIME_TAG" "$POSTGRES_TAG" >/dev/null 2>&1 || true
fi
mkdir -p "$CACHE"

is_ours() { # tag
  [ "$(docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null)" = "debootstrap" ]
}

# A root filesystem tarball from debootstrap (minbase: only what apt and a
# shell need) with the extra packages in $2, built once and cached.
rootfs() { # name packages
  local tar="$CACHE/$SUITE-$1.tar"
  if [ -s "$tar" ]; then
    log "$1 root filesystem: cached ($tar)"
    return 0
  fi
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  local dir
  dir="$(mktemp -d "$CACHE/rootfs-$1.XXXXXX")"
  log "debootstrap $SUITE ($1: $2) into $dir"
  if ! debootstrap --variant=minbase --include="$2" "$SUITE" "$dir" "$MIRROR" >"$CACHE/debootstrap-$1.log" 2>&1; then
    tail -n 30 "$CACHE/debootstrap-$1.log" >&2
    unmount_under "$dir"
    rm -rf --one-file-system "$dir"
    exit 1
  fi
  unmount_under "$dir"
  # What an image does not need: package caches, lists, docs.
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* \
    "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/locale/*
  tar --numeric-owner --one-file-system -C "$dir" -cf "$tar.partial" .
  mv "$tar.partial" "$tar"
  rm -rf --one-file-system "$dir"
}

# debootstrap mounts /proc (and more) inside the new root while it works;
# never archive or delete through a mount left behind by a failure.
unmount_under() { # dir
  local m
  for m in $(awk -v d="$1" '$2 ~ "^"d {print $2}' /proc/mounts | sort -r); do
    umount -l "$m" || true
  done
}

import() { # name tag
  log "docker import $CACHE/$SUITE-$1.tar as $2"
  docker import \
    --change "LABEL $LABEL=debootstrap" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["bash"]' \
    "$CACHE/$SUITE-$1.tar" "$2" >/dev/null
}

if is_ours "$RUNTIME_TAG"; then
  log "$RUNTIME_TAG: present"
else
  rootfs runtime ca-certificates
  import runtime "$RUNTIME_TAG"
fi

if is_ours "$POSTGRES_TAG"; then
  log "$POSTGRES_TAG: present"
else
  rootfs postgres ca-certificates,postgresql-15
  import postgres healgrid/postgres-rootfs:15
  log "building $POSTGRES_TAG from deploy/postgres"
  docker build -q --label "$LABEL=debootstrap" \
    --build-arg ROOTFS=healgrid/postgres-rootfs:15 \
    -t "$POSTGRES_TAG" "$ROOT/deploy/postgres" >/dev/null
fi
docker images --filter "label=$LABEL"
