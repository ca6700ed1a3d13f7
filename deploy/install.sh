#!/usr/bin/env bash
# Installs Berth on this host: berthd, berth, berth-shim, berth-runtime and berth-init, the
# runtime packages they need (Debian/Ubuntu), the systemd unit berthd.service, a default
# /etc/berth/daemon.json, and a `berth` group whose members may use the API socket.
# Idempotent: run it again to upgrade the binaries; an existing daemon.json is kept.
#
#   deploy/install.sh [--from DIR|TARBALL] [--no-packages] [--no-start] [--root DIR]
#   deploy/install.sh --uninstall [--purge] [--root DIR]
#
#   --from DIR        binaries from DIR (or DIR/bin); default: the release tarball this script
#                     came in (../bin), else this checkout's target/release (scripts/build)
#   --from FILE.tgz   binaries from a release tarball (scripts/release-tarball)
#   --no-packages     do not install the runtime packages
#   --no-start        do not enable and start berthd (it is never started without systemd)
#   --root DIR        install under DIR instead of / (paths in the unit and daemon.json
#                     point there; no packages, no group, nothing started): for tests
#   --uninstall       stop berthd and remove what this script installed, except the data
#                     (the data root, /var/lib/berth by default)
#   --purge           with --uninstall: remove every container and the data root too
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bins=(berthd berth berth-shim berth-runtime berth-init)
packages=(nftables libseccomp2 iproute2 procps util-linux ca-certificates)
group=berth

from=""
root=""
uninstall=0
purge=0
packages_wanted=1
start=1

die() {
  echo "install.sh: $*" >&2
  exit 1
}
say() { echo "install.sh: $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --from) [ $# -ge 2 ] || die "--from needs a directory or a tarball"; from=$2; shift 2 ;;
    --from=*) from=${1#--from=}; shift ;;
    --root) [ $# -ge 2 ] || die "--root needs a directory"; root=$2; shift 2 ;;
    --root=*) root=${1#--root=}; shift ;;
    --uninstall) uninstall=1; shift ;;
    --purge) purge=1; shift ;;
    --no-packages) packages_wanted=0; shift ;;
    --no-start) start=0; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[ "$purge" = 0 ] || [ "$uninstall" = 1 ] || die "--purge goes with --uninstall"
[ "$(id -u)" = 0 ] || die "run me as root"

if [ -n "$root" ]; then
  mkdir -p "$root"
  root=$(cd "$root" && pwd)
  [ "$root" != / ] || root=""
fi
if [ -n "$root" ]; then
  # A relocated install touches nothing outside its root.
  packages_wanted=0
  start=0
fi

bindir=$root/usr/local/bin
etc=$root/etc/berth
config=$etc/daemon.json
unitdir=$root/etc/systemd/system
unit=$unitdir/berthd.service
defaults=$root/etc/default/berthd

have_systemd() { [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

# A daemon.json value, read without jq (the file is ours or written by hand: keep it simple).
config_value() {
  local key=$1 default=$2 v=""
  if [ -f "$config" ]; then
    v=$(tr -d '\n' <"$config" | sed -n "s/.*\"$key\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p")
  fi
  echo "${v:-$default}"
}

do_uninstall() {
  local data exec_root sock
  data=$(config_value data-root "$root/var/lib/berth")
  exec_root=$(config_value exec-root "$root/run/berth")
  sock=$exec_root/berth.sock
  if [ "$purge" = 1 ] && [ -S "$sock" ] && [ -x "$bindir/berth" ]; then
    local ids
    ids=$("$bindir/berth" -H "unix://$sock" ps -aq 2>/dev/null || true)
    if [ -n "$ids" ]; then
      say "removing every container (--purge)"
      # shellcheck disable=SC2086 # one id a word
      "$bindir/berth" -H "unix://$sock" rm -f $ids >/dev/null || true
    fi
  fi
  if have_systemd; then
    systemctl disable --now berthd.service >/dev/null 2>&1 || true
  fi
  rm -f "$unit"
  have_systemd && systemctl daemon-reload
  for b in "${bins[@]}"; do rm -f "$bindir/$b"; done
  rm -f "$defaults"
  rm -rf "$etc"
  if [ -z "$root" ] && getent group "$group" >/dev/null; then
    groupdel "$group"
  fi
  if [ "$purge" = 1 ]; then
    for d in "$data" "$exec_root"; do
      [ -d "$d" ] || continue
      # Overlay and bind mounts of containers that are gone: unmount before deleting.
      awk -v d="$d/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null || true; done
      rm -rf "$d"
    done
    say "removed Berth and its data"
  else
    say "removed Berth; its data is kept in $data (--uninstall --purge removes it)"
  fi
}

# The directory holding the binaries: a build directory, a tarball's bin/ (unpacked into
# $tmp), or where this script was shipped.
tmp=""
src=""
unit_src=""
cleanup() { [ -z "$tmp" ] || rm -rf "$tmp"; }
trap cleanup EXIT

# Sets src (and unit_src when a tarball ships its own unit).
find_source() {
  src=$from
  if [ -z "$src" ]; then
    if [ -x "$here/../bin/berthd" ]; then
      src=$here/../bin
    else
      src=$here/../target/release
    fi
  fi
  if [ -f "$src" ]; then
    tmp=$(mktemp -d)
    tar -xzf "$src" -C "$tmp" || die "cannot unpack $src"
    local top
    top=$(find "$tmp" -mindepth 1 -maxdepth 3 -type f -name berthd -printf '%h\n' | head -n1)
    [ -n "$top" ] || die "$src holds no berthd"
    # A tarball ships its own unit; prefer it (it matches its binaries).
    if [ -f "$top/../deploy/systemd/berthd.service" ]; then
      unit_src=$top/../deploy/systemd/berthd.service
    fi
    src=$top
  elif [ -d "$src/bin" ] && [ -x "$src/bin/berthd" ]; then
    src=$src/bin
  fi
  for b in "${bins[@]}"; do
    [ -x "$src/$b" ] || die "$src/$b is missing: build with scripts/build, or pass --from"
  done
}

install_packages() {
  if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    say "not a Debian/Ubuntu host: install nftables, libseccomp and iproute2 yourself"
    return
  fi
  local missing=() p
  for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  say "installing packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

default_config() {
  cat <<JSON
{
  "group": "$group",
  "data-root": "$root/var/lib/berth",
  "exec-root": "$root/run/berth",
  "hosts": ["unix://$root/run/berth/berth.sock"],
  "log-level": "info"
}
JSON
}

do_install() {
  unit_src=$here/systemd/berthd.service
  find_source
  [ -f "$unit_src" ] || die "$unit_src is missing"
  [ "$packages_wanted" = 0 ] || install_packages
  if [ -z "$root" ] && ! getent group "$group" >/dev/null; then
    groupadd --system "$group"
    say "created group $group: its members may use the API socket"
  fi
  mkdir -p "$bindir" "$etc" "$unitdir"
  local b
  for b in "${bins[@]}"; do
    # A new file renamed into place: a running berthd or shim keeps its old binary.
    install -m 0755 "$src/$b" "$bindir/.$b.new"
    mv -f "$bindir/.$b.new" "$bindir/$b"
  done
  chmod 0755 "$etc"
  if [ ! -f "$config" ]; then
    default_config >"$config"
    chmod 0644 "$config"
    say "wrote $config"
  else
    say "kept $config"
  fi
  sed -e "s#/usr/local/bin/#$bindir/#g" -e "s#/etc/berth/#$etc/#g" \
    -e "s#/etc/default/berthd#$defaults#g" "$unit_src" >"$unit.new"
  chmod 0644 "$unit.new"
  mv -f "$unit.new" "$unit"
  say "installed $("$bindir/berthd" --version 2>/dev/null || echo berthd) into $bindir, unit $unit"
  if have_systemd; then
    systemctl daemon-reload
    if [ "$start" = 1 ]; then
      systemctl enable berthd.service >/dev/null 2>&1
      # A running berthd picks up the new binaries; its containers keep running.
      systemctl restart berthd.service
      say "berthd enabled and started: berth -H unix://$root/run/berth/berth.sock info"
    fi
  elif [ "$start" = 1 ]; then
    say "systemd is not running here: start berthd with the unit's command line:"
    say "  $bindir/berthd --config-file $config"
  fi
}

if [ "$uninstall" = 1 ]; then
  do_uninstall
else
  do_install
fi
