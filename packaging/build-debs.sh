#!/usr/bin/env bash
# Builds the two Debian packages, vigil-agent and vigil-reporter, from built
# binaries with dpkg-deb (no extra tool to install: dpkg-deb is on every
# Debian machine). packaging/README.md says what goes where and why.
#
#   packaging/build-debs.sh [--bin-dir DIR] [--out DIR] [--fast]
#
# --bin-dir  where vigil-agent and vigil-reporter are (default target/release;
#            build them with `cargo build --release`)
# --out      where the .deb files go (default target/debian)
# --fast     gzip level 1 instead of xz (for tests; packages for release use xz)
set -euo pipefail
cd "$(dirname "$0")/.."

bin_dir=target/release
out=target/debian
compress=(-Zxz)
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) bin_dir=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --fast) compress=(-Zgzip -z1); shift ;;
    -h|--help) sed -n 2,12p "$0"; exit 0 ;;
    *) echo "build-debs.sh: unknown argument \`$1\` (see --help)" >&2; exit 2 ;;
  esac
done

for b in vigil-agent vigil-reporter; do
  if [ ! -x "$bin_dir/$b" ]; then
    echo "build-debs.sh: \`$bin_dir/$b\` is missing: run \`cargo build --release\` first (or pass --bin-dir)" >&2
    exit 2
  fi
done
command -v dpkg-deb >/dev/null || { echo "build-debs.sh: dpkg-deb is missing: apt-get install dpkg" >&2; exit 2; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
arch=$(dpkg --print-architecture)
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One package's tree: the binary (without debug info), its unit, its scripts.
stage() {
  local name=$1 root=$work/$1
  install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" \
    "$root/usr/share/doc/$name" "$root/etc/vigil"
  if command -v strip >/dev/null; then
    strip --strip-debug -o "$root/usr/bin/$name" "$bin_dir/$name"
    chmod 0755 "$root/usr/bin/$name"
  else
    install -m 0755 "$bin_dir/$name" "$root/usr/bin/$name"
  fi
  # The shipped unit, with a condition so it never starts without its
  # config (a package installed before it is configured stays idle).
  sed "s|^\[Unit\]$|[Unit]\nConditionPathExists=/etc/vigil/${name#vigil-}.yaml|" \
    "examples/systemd/$name.service" >"$root/lib/systemd/system/$name.service"
  chmod 0644 "$root/lib/systemd/system/$name.service"
  for s in postinst prerm postrm; do
    install -m 0755 "packaging/$name/$s" "$root/DEBIAN/$s"
  done
  install -m 0644 packaging/copyright "$root/usr/share/doc/$name/copyright"
}

stage vigil-agent
install -d -m 0755 "$work/vigil-agent/usr/share/vigil/policies" \
  "$work/vigil-agent/usr/share/doc/vigil-agent/examples"
install -m 0644 policies/papyrs.yaml policies/papyrs.test.yaml \
  "$work/vigil-agent/usr/share/vigil/policies/"
install -m 0644 packaging/vigil-agent/agent.yaml.example \
  "$work/vigil-agent/usr/share/doc/vigil-agent/examples/agent.yaml"

stage vigil-reporter
# The package's user is a static system user (made by postinst), so the
# data directory keeps its owner across restarts and upgrades.
sed -i '/^DynamicUser=yes$/d' "$work/vigil-reporter/lib/systemd/system/vigil-reporter.service"
install -d -m 0755 "$work/vigil-reporter/usr/share/doc/vigil-reporter/examples"
install -m 0644 packaging/vigil-reporter/reporter.yaml.example \
  "$work/vigil-reporter/usr/share/doc/vigil-reporter/examples/reporter.yaml"

control() {
  local name=$1 desc=$2 depends=$3 size
  size=$(du -sk --exclude=DEBIAN "$work/$name" | cut -f1)
  cat >"$work/$name/DEBIAN/control" <<EOF
Package: $name
Version: $version
Architecture: $arch
Maintainer: vigil developers <security@papyrs.example>
Installed-Size: $size
Depends: $depends
Section: admin
Priority: optional
Homepage: https://github.com/vigil/vigil
Description: $desc
EOF
}
control vigil-agent "vigil compliance agent
 Verifies a written security policy's controls on this server (TLS,
 firewall, patches, backups, mirroring, virus scanning, erasure) and
 reports to the vigil reporter with evidence." "libc6 (>= 2.34)"
control vigil-reporter "vigil reporter: evidence, fleet posture and erasure
 The central service vigil agents report to: stores evidence and history,
 gates account closure and erasure, renders the security brochure and takes
 incident reports." "libc6 (>= 2.34), adduser"

for name in vigil-agent vigil-reporter; do
  dpkg-deb --root-owner-group "${compress[@]}" --build "$work/$name" \
    "$out/${name}_${version}_${arch}.deb" >/dev/null
  echo "$out/${name}_${version}_${arch}.deb"
done
