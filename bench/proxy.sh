#!/usr/bin/env bash
# The PROXY/balancer row of make bench (issue 18): sessions per second
# through HAProxy with one and two popper backends, and what the PROXY
# header costs a session (the same popper, direct vs with a v2 header). As
# root; runs alone too:
#
#   bench/proxy.sh
#
# Knobs: PB_SESSIONS (400 a run), PB_REPEATS (5), PB_CONCURRENCY (1: one user, whose sessions exclude each other),
# PB_USER (pb_user). Everything runs in a network namespace of its own and a
# private mount namespace (the spool is bound over /var/mail there).
set -euo pipefail
die() { echo "bench/proxy.sh: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "must run as root (network and mount namespaces, a user)"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
cd "$repo"
scripts/setup.sh bench
echo "building popper (release) ..."
cargo build --release --locked -p popper
user=${PB_USER:-pb_user}
password="pw-${user}-bench"
getent passwd "$user" >/dev/null || useradd --create-home --user-group --shell /bin/sh "$user"
echo "$user:$password" | chpasswd
work=$(mktemp -d /tmp/popper-proxy-bench.XXXXXX)
chmod 755 "$work"
ns=popper-bench-proxy-$$
cleanup() {
    local rc=$?
    ip netns del "$ns" 2>/dev/null || true
    rm -rf -- "$work"
    exit "$rc"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
unshare -m --propagation private -- ip netns exec "$ns" python3 "$here/proxy.py" \
    --work "$work" --popper "$repo/target/release/popper" --user "$user" --password "$password" \
    --sessions "${PB_SESSIONS:-400}" --repeats "${PB_REPEATS:-5}" --concurrency "${PB_CONCURRENCY:-1}"
