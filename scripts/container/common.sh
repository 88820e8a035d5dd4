# shellcheck shell=bash disable=SC2034  # sourced: the variables are used by the scripts
# Shared settings for scripts/container/*.sh (sourced, not run). The Python
# test (tests/container/test_image.py) runs podman through podman_ below.
#
# GANTRY_CONTAINER_CACHE    where the saved base image and the image storage
#                           live (default /var/cache/gantry-container)
# GANTRY_CONTAINER_STORAGE  overlay or vfs (default: overlay if this kernel can
#                           mount it here, else vfs)
# DEBIAN_MIRROR             debootstrap's mirror (default: the one apt uses)

CACHE_DIR=${GANTRY_CONTAINER_CACHE:-/var/cache/gantry-container}
# Bump BASE_VERSION when base-image.sh changes what it builds: the cached
# tarball and image are then rebuilt instead of reused.
BASE_VERSION=3
BASE_IMAGE=localhost/gantry-base:bookworm-v$BASE_VERSION
BASE_TARBALL=$CACHE_DIR/gantry-base-bookworm-v$BASE_VERSION.tar

# overlay stores only each layer's changes; vfs copies the whole tree for
# every layer and container (measured here: `run true` 0.7 s against 10 s, a
# build 3x slower), but needs no overlay mounts. A storage root is tied to its
# driver, so each has its own; once one exists, it is kept.
can_mount_overlay() {
  local probe ok=1
  probe=$(mktemp -d)
  mkdir "$probe/lower" "$probe/upper" "$probe/work" "$probe/merged"
  if mount -t overlay overlay \
      -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
      "$probe/merged" 2>/dev/null; then
    umount "$probe/merged"
    ok=0
  fi
  rm -rf "$probe"
  return $ok
}
if [ -n "${GANTRY_CONTAINER_STORAGE:-}" ]; then
  STORAGE_DRIVER=$GANTRY_CONTAINER_STORAGE
elif [ -d "$CACHE_DIR/storage-overlay" ]; then
  STORAGE_DRIVER=overlay
elif [ -d "$CACHE_DIR/storage-vfs" ]; then
  STORAGE_DRIVER=vfs
elif [ "$(id -u)" = 0 ] && can_mount_overlay; then
  STORAGE_DRIVER=overlay
else
  STORAGE_DRIVER=vfs
fi
# A private root/runroot keeps these images apart from the host's podman.
STORAGE_FLAGS=(--storage-driver "$STORAGE_DRIVER"
               --root "$CACHE_DIR/storage-$STORAGE_DRIVER"
               --runroot "$CACHE_DIR/run-$STORAGE_DRIVER")

# No systemd/journald here: cgroupfs and a file event log; crun fails on
# hybrid cgroups, runc works.
podman_() {
  podman "${STORAGE_FLAGS[@]}" --cgroup-manager cgroupfs --events-backend file \
    --runtime runc "$@"
}

buildah_() {
  buildah "${STORAGE_FLAGS[@]}" "$@"
}

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "$(basename "$0"): run as root (image storage under $CACHE_DIR, chroot builds)" >&2
    exit 1
  fi
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null || {
      echo "$(basename "$0"): $cmd missing: run scripts/container/install.sh" >&2
      exit 1
    }
  done
}
