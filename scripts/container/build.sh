#!/usr/bin/env bash
# Build gantry's image from the repo's Dockerfile on the local base image
# (scripts/container/base-image.sh), with buildah, no Docker engine.
#   scripts/container/build.sh [TAG [DIR]]   (default TAG: localhost/gantry:dev)
# DIR: another build context with a Dockerfile taking ARG BASE (deploy/postgres).
# Root on Debian. Prints how long each step took.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
need_root buildah podman
tag=${1:-localhost/gantry:dev}
context=${2:-$repo}
ca=/etc/ssl/certs/ca-certificates.crt

total=$SECONDS
"$here/base-image.sh"

# pip inside RUN trusts only this host's CA bundle (TLS goes through a proxy):
# bind-mounted for the build, never copied into the image.
mounts=()
[ -f "$ca" ] && mounts=(-v "$ca:$ca:ro")
# Cached layers make a rebuild after a code change take seconds (dependencies
# are installed in an earlier layer); on vfs every layer is a full copy, slower
# than installing again.
layers=--layers=false
[ "$STORAGE_DRIVER" = overlay ] && layers=--layers=true

start=$SECONDS
echo "==> buildah bud -t $tag (BASE=$BASE_IMAGE, $STORAGE_DRIVER storage, $layers)"
# docker format: OCI images drop HEALTHCHECK. chroot isolation and the host's
# network: no nested namespaces or network setup needed.
buildah_ bud --isolation chroot --network host --format docker --pull=never "$layers" \
  --build-arg "BASE=$BASE_IMAGE" "${mounts[@]}" \
  -f "$context/Dockerfile" -t "$tag" "$context"
echo "    build took $((SECONDS - start)) s"

# Images no tag leads to any more (earlier builds of this tag, stale layers).
start=$SECONDS
podman_ image prune --force >/dev/null
echo "    prune took $((SECONDS - start)) s"
echo "image $tag built in $((SECONDS - total)) s"
