#!/usr/bin/env bash
# Berth cluster node: EC2 user data (cloud-init runs it once, as root, at first boot).
# One template for managers and workers: launch every instance with it and the same
# values; the role comes from BERTH_ROLE, else from the instance tag `berth-role`
# (instance metadata tags must be enabled: --metadata-options InstanceMetadataTags=enabled).
# The advertise address is the instance's private IPv4, read from the metadata service
# (IMDSv2). Managers list: fixed private IPs (or DNS names) of the manager instances; the
# first one creates the cluster, every other node joins by itself once it is up.
# deploy/ec2/README.md has the whole guide.
set -euo pipefail

# ---- fill these in (or let your templating set them in the environment) ----
: "${BERTH_MANAGERS:=10.0.1.10,10.0.1.11,10.0.1.12}"   # comma-separated, first = bootstrap
: "${BERTH_SECRET:=}"                                  # openssl rand -hex 32; same on every node
: "${BERTH_ROLE:=}"                                    # manager | worker | empty: the berth-role tag
: "${BERTH_RELEASE:=https://example.com/berth-linux-x86_64.tgz}"  # URL or local path of scripts/release-tarball's output
# ---- knobs for tests and unusual setups ----
: "${BERTH_METADATA_URL:=http://169.254.169.254}"      # the instance metadata service
: "${BERTH_ROOT:=}"                                    # install under this directory (tests)
: "${BERTH_INSTALL_ARGS:=}"                            # extra install.sh arguments

log() { echo "berth user-data: $*" >&2; }
die() {
  log "$*"
  exit 1
}
[ -n "$BERTH_SECRET" ] || die "BERTH_SECRET is empty: set it to the cluster secret (openssl rand -hex 32)"

# IMDSv2: a session token first, then every read with it. Retried: the metadata service
# can lag the first seconds of a boot.
imds_token=""
imds() {
  local path=$1 i
  for i in $(seq 1 30); do
    if [ -z "$imds_token" ]; then
      imds_token=$(curl -sf -X PUT "$BERTH_METADATA_URL/latest/api/token" \
        -H "X-aws-ec2-metadata-token-ttl-seconds: 300" || true)
    fi
    if [ -n "$imds_token" ] &&
      curl -sf -H "X-aws-ec2-metadata-token: $imds_token" "$BERTH_METADATA_URL/latest/$path"; then
      return 0
    fi
    [ "$i" = 30 ] || sleep 1
  done
  return 1
}

addr=$(imds meta-data/local-ipv4) || die "cannot read local-ipv4 from $BERTH_METADATA_URL"
role=$BERTH_ROLE
if [ -z "$role" ]; then
  role=$(imds meta-data/tags/instance/berth-role || true)
fi
case "$role" in
  manager | worker) ;;
  *) die "role ${role:-unset}: set BERTH_ROLE or tag the instance berth-role=manager|worker" ;;
esac
log "advertise address $addr, role $role"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
case "$BERTH_RELEASE" in
  http://* | https://*)
    if ! command -v curl >/dev/null 2>&1; then
      apt-get update -qq && apt-get install -y -qq curl >/dev/null
    fi
    curl -fsSL --retry 10 --retry-connrefused -o "$work/berth.tgz" "$BERTH_RELEASE"
    ;;
  *) cp "$BERTH_RELEASE" "$work/berth.tgz" ;;
esac
tar -xzf "$work/berth.tgz" -C "$work"
installer=$(find "$work" -maxdepth 3 -path '*/deploy/install.sh' | head -n1)
[ -n "$installer" ] || die "$BERTH_RELEASE holds no deploy/install.sh"

# The cluster settings go into daemon.json before install.sh runs (it keeps an existing
# one) and before berthd first starts; the secret sits in a root-only file.
etc=$BERTH_ROOT/etc/berth
mkdir -p "$etc"
umask 077
printf '%s\n' "$BERTH_SECRET" >"$etc/cluster-secret"
umask 022
managers_json=$(printf '%s' "$BERTH_MANAGERS" | tr -d ' ' | sed 's/,/", "/g')
cat >"$etc/daemon.json" <<JSON
{
  "group": "berth",
  "data-root": "$BERTH_ROOT/var/lib/berth",
  "exec-root": "$BERTH_ROOT/run/berth",
  "hosts": ["unix://$BERTH_ROOT/run/berth/berth.sock"],
  "log-level": "info",
  "cluster": {
    "role": "$role",
    "managers": ["$managers_json"],
    "secret-file": "$etc/cluster-secret",
    "advertise-addr": "$addr",
    "listen-addr": "0.0.0.0:2377"
  }
}
JSON
args=()
[ -z "$BERTH_ROOT" ] || args+=(--root "$BERTH_ROOT")
# shellcheck disable=SC2206 # extra arguments, one a word
args+=($BERTH_INSTALL_ARGS)
"$installer" "${args[@]}"
log "done: berthd forms or joins the cluster by itself (journalctl -u berthd)"
