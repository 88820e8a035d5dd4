#!/usr/bin/env bash
# Build the local base image (Debian bookworm + python3 + venv) with
# debootstrap, save it as a tarball in the cache and load it into the image
# storage the build and the tests use (common.sh). Each step is skipped when
# its result exists: debootstrap runs once per machine (1-2 min), a load
# takes seconds.
# Root on Debian; run scripts/container/install.sh first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
need_root podman debootstrap

if podman_ image exists "$BASE_IMAGE"; then
  echo "base image $BASE_IMAGE present ($STORAGE_DRIVER storage in $CACHE_DIR)"
  exit 0
fi
mkdir -p "$CACHE_DIR"

if [ ! -s "$BASE_TARBALL" ]; then
  mirror=${DEBIAN_MIRROR:-}
  if [ -z "$mirror" ]; then
    # The mirror apt already uses (deb822 or one-line sources), not a guess.
    mirror=$(grep -hsoE '(URIs:|^deb) +https?://[^ ]+/debian/?( |$)' \
               /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
               /etc/apt/sources.list | head -n1 | awk '{print $2}' || true)
    mirror=${mirror:-http://deb.debian.org/debian}
  fi
  rootfs=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs" "$rootfs.log" "$BASE_TARBALL.part"' EXIT
  start=$SECONDS
  echo "==> debootstrap bookworm from $mirror into $rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
    || { tail -n 30 "$rootfs.log" >&2; exit 1; }
  rm -f "$rootfs.log"
  # What the image never needs: downloaded .debs and package lists.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  # mktemp made it 0700, and "." in the tar becomes the image's "/": a
  # non-root user could then exec nothing.
  chmod 755 "$rootfs"
  echo "    debootstrap took $((SECONDS - start)) s"

  start=$SECONDS
  echo "==> podman import $BASE_IMAGE"
  tar -C "$rootfs" --numeric-owner -c . \
    | podman_ import --quiet \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
  echo "==> podman save $BASE_TARBALL"
  podman_ save --quiet -o "$BASE_TARBALL.part" "$BASE_IMAGE"
  mv "$BASE_TARBALL.part" "$BASE_TARBALL"
  # Older versions of the base are not used any more.
  find "$CACHE_DIR" -maxdepth 1 -name 'gantry-base-*.tar' ! -path "$BASE_TARBALL" -delete
  echo "    import and save took $((SECONDS - start)) s ($(du -h "$BASE_TARBALL" | cut -f1))"
else
  start=$SECONDS
  echo "==> podman load $BASE_TARBALL"
  podman_ load --quiet -i "$BASE_TARBALL" >/dev/null
  echo "    load took $((SECONDS - start)) s"
fi
podman_ image exists "$BASE_IMAGE"
echo "base image $BASE_IMAGE ready"
