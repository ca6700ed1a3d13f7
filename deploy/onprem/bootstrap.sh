#!/usr/bin/env bash
# Brings up a Berth cluster on your own machines over SSH, from an inventory:
#
#   deploy/onprem/bootstrap.sh [options] INVENTORY
#
# INVENTORY, one host a line (# starts a comment):
#   ADDRESS  ROLE  [ssh=USER@HOST] [root=DIR] [KEY=VALUE ...]
#   10.0.0.11  manager
#   10.0.0.12  manager
#   10.0.0.13  manager
#   10.0.0.21  worker   ssh=admin@node21.example.net
# ADDRESS is the address the node advertises to the cluster (and, without ssh=, the one
# ssh reaches it at, as root). Managers are listed in order: the first creates the cluster,
# every other node joins by itself. root=DIR installs under DIR (install.sh --root, for
# tests); any other KEY=VALUE goes into that host's daemon.json as a string setting
# (e.g. cgroup-parent=berth).
#
# Options:
#   --tarball FILE      the release to install (default: made with scripts/release-tarball)
#   --secret-file FILE  the cluster secret (default: ./berth-cluster-secret, made if missing)
#   -i KEY              ssh identity file (passed to ssh and scp)
#   -o OPTION           ssh option, repeatable (passed to ssh and scp)
#   --timeout SECONDS   how long to wait for every node to be Ready (default 180)
#
# Each host gets the tarball (scp), its daemon.json with the cluster settings, install.sh,
# and berthd started (systemd, or in the background where systemd is not running). Then
# `berth node ls` of the first manager is printed once every node is Ready.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tarball=""
secret_file=./berth-cluster-secret
timeout=180
ssh_opts=(-o BatchMode=yes -o ConnectTimeout=10)

die() {
  echo "bootstrap: $*" >&2
  exit 1
}
say() { echo "bootstrap: $*" >&2; }

inventory=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tarball) tarball=$2; shift 2 ;;
    --secret-file) secret_file=$2; shift 2 ;;
    -i) ssh_opts+=(-i "$2"); shift 2 ;;
    -o) ssh_opts+=(-o "$2"); shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) inventory=$1; shift ;;
  esac
done
[ -n "$inventory" ] || die "usage: bootstrap.sh [options] INVENTORY (see --help)"
[ -f "$inventory" ] || die "$inventory: no such file"

# The inventory: parallel arrays, in file order.
addrs=()
roles=()
targets=()
extras=()
managers=()
while read -r addr role rest; do
  case "$addr" in '' | '#'*) continue ;; esac
  case "$role" in manager | worker) ;; *) die "$inventory: $addr: role must be manager or worker, not '$role'" ;; esac
  target=root@$addr
  extra=""
  for kv in $rest; do
    case "$kv" in
      ssh=*) target=${kv#ssh=} ;;
      *=*) extra="$extra $kv" ;;
      *) die "$inventory: $addr: expected KEY=VALUE, not '$kv'" ;;
    esac
  done
  addrs+=("$addr")
  roles+=("$role")
  targets+=("$target")
  extras+=("$extra")
  [ "$role" != manager ] || managers+=("$addr")
done <"$inventory"
[ ${#addrs[@]} -gt 0 ] || die "$inventory lists no host"
[ ${#managers[@]} -gt 0 ] || die "$inventory lists no manager"

if [ -z "$tarball" ]; then
  [ -x "$here/../../scripts/release-tarball" ] || die "no --tarball given and no scripts/release-tarball here"
  tarball=$("$here/../../scripts/release-tarball")
fi
[ -f "$tarball" ] || die "$tarball: no such file"
if [ ! -s "$secret_file" ]; then
  (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$secret_file")
  say "made a cluster secret in $secret_file (keep it: nodes added later need it)"
fi
secret_copy=$(mktemp)
trap 'rm -f "$secret_copy"' EXIT
tr -d '[:space:]' <"$secret_file" >"$secret_copy"
managers_json=$(printf '"%s", ' "${managers[@]}")
managers_json=${managers_json%, }

# What runs on each host (bash -s, with its settings as arguments).
# shellcheck disable=SC2016 # expanded on the remote host
remote='
set -euo pipefail
tgz=$1 role=$2 addr=$3 managers=$4 root=$5 extra=$6
secret=$(cat "$tgz.secret")
work=$(mktemp -d)
trap "rm -rf $work $tgz $tgz.secret" EXIT
tar -xzf "$tgz" -C "$work"
installer=$(find "$work" -maxdepth 3 -path "*/deploy/install.sh" | head -n1)
etc=$root/etc/berth
mkdir -p "$etc"
(umask 077 && printf "%s\n" "$secret" >"$etc/cluster-secret")
more=""
for kv in $extra; do more="$more  \"${kv%%=*}\": \"${kv#*=}\",
"; done
cat >"$etc/daemon.json" <<JSON
{
  "group": "berth",
  "data-root": "$root/var/lib/berth",
  "exec-root": "$root/run/berth",
  "hosts": ["unix://$root/run/berth/berth.sock"],
$more  "cluster": {
    "role": "$role",
    "managers": [$managers],
    "secret-file": "$etc/cluster-secret",
    "advertise-addr": "$addr",
    "listen-addr": "0.0.0.0:2377"
  }
}
JSON
args=()
[ -z "$root" ] || args+=(--root "$root")
"$installer" "${args[@]}" >&2
sock=$root/run/berth/berth.sock
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
  exit 0  # install.sh enabled and (re)started berthd.service
fi
if "$root/usr/local/bin/berth" -H "unix://$sock" version >/dev/null 2>&1; then
  echo "berthd already runs on $addr" >&2
  exit 0
fi
# No systemd: start berthd with its unit'"'"'s command line, detached.
cmd=$(sed -n "s/^ExecStart=//p" "$root/etc/systemd/system/berthd.service")
mkdir -p "$root/var/log"
# shellcheck disable=SC2086
setsid $cmd >>"$root/var/log/berthd.log" 2>&1 </dev/null &
echo "started berthd on $addr (no systemd): $cmd" >&2
'

# shellcheck disable=SC2029 # callers quote what must expand remotely
ssh_to() { ssh "${ssh_opts[@]}" "$@"; }

for i in "${!addrs[@]}"; do
  addr=${addrs[$i]} role=${roles[$i]} target=${targets[$i]}
  root=""
  for kv in ${extras[$i]}; do
    case "$kv" in root=*) root=${kv#root=} ;; esac
  done
  extra=""
  for kv in ${extras[$i]}; do
    case "$kv" in root=*) ;; *) extra="$extra $kv" ;; esac
  done
  say "$addr ($role): installing through $target"
  remote_tgz=/tmp/berth-bootstrap-$$-$i.tgz
  # The secret travels as a file (mode 0600, removed at once), never on a command line.
  scp -q "${ssh_opts[@]}" "$tarball" "${target}:$remote_tgz"
  scp -q "${ssh_opts[@]}" "$secret_copy" "${target}:$remote_tgz.secret"
  # shellcheck disable=SC2029 # the arguments are meant to expand here
  ssh_to "$target" bash -s -- "$remote_tgz" "$role" "$addr" "'$managers_json'" "'$root'" "'${extra# }'" <<<"$remote" ||
    die "$addr: install failed"
done

first=${managers[0]}
for i in "${!addrs[@]}"; do
  [ "${addrs[$i]}" = "$first" ] || continue
  target=${targets[$i]}
  root=""
  for kv in ${extras[$i]}; do
    case "$kv" in root=*) root=${kv#root=} ;; esac
  done
done
berth="'$root/usr/local/bin/berth' -H 'unix://$root/run/berth/berth.sock'"
say "waiting for ${#addrs[@]} nodes to be Ready (berth node ls on $first)"
deadline=$((SECONDS + timeout))
while :; do
  # shellcheck disable=SC2029 # expanded here on purpose
  ready=$(ssh_to "$target" "$berth node ls --format '{{.Status}}'" 2>/dev/null | grep -c '^Ready$' || true)
  [ "$ready" -lt "${#addrs[@]}" ] || break
  [ $SECONDS -lt $deadline ] || die "only $ready of ${#addrs[@]} nodes Ready after ${timeout}s"
  sleep 2
done
# shellcheck disable=SC2029 # expanded here on purpose
ssh_to "$target" "$berth node ls"
