#!/usr/bin/env bash
# Makes `docker compose` (Compose v2, a Docker CLI plugin) available when it
# is missing, from Debian's own package: bookworm ships only the v1
# `docker-compose`, trixie packages v2. The .deb is fetched from Debian's
# archive by its pinned version and checked against its pinned SHA-256
# (the archive's Packages index), then only the plugin binary is unpacked
# into ~/.docker/cli-plugins; nothing else on the machine changes.
#
# Exits non-zero when v2 cannot be had (another architecture, the pinned
# version gone from the archive, a checksum mismatch), saying why.
set -euo pipefail

if docker compose version >/dev/null 2>&1; then
  docker compose version
  exit 0
fi
if [ "$(dpkg --print-architecture 2>/dev/null || echo unknown)" != amd64 ]; then
  echo "compose-v2.sh: only the amd64 package is pinned here" >&2
  exit 1
fi
VERSION=2.26.1-4
SHA256=47681197cb2b1ab88206b42a1a92fc75f50d9530a6322d03494a473eed0408ea
URL="http://deb.debian.org/debian/pool/main/d/docker-compose/docker-compose_${VERSION}_amd64.deb"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if ! curl -fsSL --retry 3 -o "$work/compose.deb" "$URL"; then
  echo "compose-v2.sh: cannot download $URL" >&2
  exit 1
fi
if ! echo "$SHA256  $work/compose.deb" | sha256sum -c --quiet; then
  echo "compose-v2.sh: $URL does not match its pinned SHA-256" >&2
  exit 1
fi
dpkg-deb -x "$work/compose.deb" "$work/pkg"
mkdir -p "$HOME/.docker/cli-plugins"
install -m 0755 "$work/pkg/usr/libexec/docker/cli-plugins/docker-compose" \
  "$HOME/.docker/cli-plugins/docker-compose"
docker compose version
