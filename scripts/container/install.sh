#!/usr/bin/env bash
# Install what building and running gantry's image needs without a Docker
# engine: buildah (build), podman + runc (run; crun fails on hybrid cgroups),
# debootstrap (the local base image), and CNI's dnsname plugin, so containers
# of one compose network find each other by service name (deploy/compose.yaml).
# Debian, as root; a no-op when present.
set -euo pipefail

commands=(buildah podman runc debootstrap)
packages=(buildah podman runc debootstrap golang-github-containernetworking-plugin-dnsname)
dnsname=/usr/lib/cni/dnsname

missing=()
for cmd in "${commands[@]}"; do
  command -v "$cmd" >/dev/null || missing+=("$cmd")
done
[ -x "$dnsname" ] || missing+=("$dnsname")
if [ ${#missing[@]} -eq 0 ]; then
  echo "container tools present: ${commands[*]}"
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "missing ${missing[*]}: run this script as root on Debian" >&2
  exit 1
fi

start=$SECONDS
echo "==> apt-get update"
apt-get update -qq
echo "==> apt-get install ${packages[*]}"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "${packages[@]}" >/dev/null
for cmd in "${commands[@]}"; do
  command -v "$cmd" >/dev/null || { echo "still missing: $cmd" >&2; exit 1; }
done
[ -x "$dnsname" ] || { echo "still missing: $dnsname" >&2; exit 1; }
echo "container tools installed in $((SECONDS - start)) s"
