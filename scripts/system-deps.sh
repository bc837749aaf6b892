#!/usr/bin/env bash
# System packages Murmurate's install and tests need, installed only when missing.
# - libgmp-dev, gcc: py-libp2p pins fastecdsa, which has no wheel and builds from source.
# - tmux: the terminal client's end-to-end test drives the real app in tmux.
# - iproute2, iptables: network-namespace tests (NAT, packet loss) run as root.
set -euo pipefail
needed=(libgmp-dev gcc tmux iproute2 iptables)
missing=()
for pkg in "${needed[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "murmurate: missing system packages: ${missing[*]} (install them with apt-get as root)" >&2
  # libgmp-dev and gcc are required to build; the rest only enable some tests.
  for pkg in "${missing[@]}"; do case "$pkg" in libgmp-dev|gcc) exit 1;; esac; done
  exit 0
fi
echo "murmurate: installing system packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || true
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
  echo "murmurate: apt-get could not install ${missing[*]}" >&2
  for pkg in "${missing[@]}"; do case "$pkg" in libgmp-dev|gcc) exit 1;; esac; done
fi
