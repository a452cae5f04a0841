#!/usr/bin/env bash
# make bench: popper against popa3d and Dovecot on the same machine, in one
# run, interleaved; prints the table and writes bench/RESULTS.md. As root:
#
#   bench/peers.sh
#
# Knobs (environment): PB_REPEATS (5), PB_SESSIONS (500), PB_SEED (1),
# PB_SMALL ("100,2": messages,MB), PB_MEDIUM ("1000,50"), PB_LARGE
# ("20000,1000"), PB_MAILDIR ("20000,1000": the Maildir rows, 0 for none),
# PB_TLS (1: the TLS rows; 0 leaves them out), PB_TLS_SESSIONS (200: (a-tls)
# sessions a run), PB_GROW ("10000,200": the second mailbox of the (f)/(g)
# rows, beside the large one), PB_MANY ("200000,200": the
# many-small-messages rows, 0 for none), PB_ROWS ("all"; "maildir": only the Maildir rows and the
# floors; "growing": only (f) first login, (g) check after a delivery and
# the many-messages rows), PB_TMPDIR (/tmp), PB_USER (pb_user), PB_OUT (bench/RESULTS.md).
# See bench/README.md.
set -euo pipefail

die() { echo "bench/peers.sh: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "must run as root (it installs the peers, makes a user and uses a mount namespace)"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
cd "$repo"

scripts/setup.sh bench
echo "building popper (release) ..."
cargo build --release --locked -p popper
popper=$repo/target/release/popper
tls_floor=
if [[ ${PB_TLS:-1} != 0 ]]; then
    echo "building bench/tls-floor (release) ..."
    cargo build --release --locked --manifest-path bench/tls-floor/Cargo.toml --target-dir target/tls-floor
    tls_floor=$repo/target/tls-floor/release/tls-floor
fi
popa3d=/var/cache/popper-bench/popa3d/usr/sbin/popa3d
[[ -x $popa3d ]] || die "no $popa3d (scripts/setup.sh bench unpacks it)"

user=${PB_USER:-pb_user}
password="pw-${user}-bench"
if ! getent passwd "$user" >/dev/null; then
    useradd --create-home --user-group --shell /bin/sh "$user" || die "useradd $user failed"
fi
echo "$user:$password" | chpasswd || die "chpasswd $user failed"

tmp=${PB_TMPDIR:-/tmp}
avail=$(df --output=avail -B1 "$tmp" | tail -n 1 | tr -d ' ')
# The Maildir rows need room for the Maildir, and for its messages as an
# mbox of their own unless they are the large mailbox's.
large=${PB_LARGE:-20000,1000}
maildir=${PB_MAILDIR:-20000,1000}
need=4000
if [[ $maildir != 0 ]]; then
    [[ $maildir =~ ^[0-9]+,[0-9]+$ ]] || die "PB_MAILDIR is messages,MB or 0, not '$maildir'"
    mb=${maildir#*,}
    need=$(( need + mb ))
    [[ ${maildir// /} == "${large// /}" ]] || need=$(( need + mb ))
fi
(( avail >= need * 1000000 )) || die "only $((avail / 1000000)) MB free on $tmp; need $need MB"
work=$(mktemp -d "$tmp/popper-peers.XXXXXX")
chmod 755 "$work"
driver=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $driver ]] && kill -0 "$driver" 2>/dev/null; then
        kill -TERM "$driver" 2>/dev/null || true
        wait "$driver" 2>/dev/null || true
    fi
    rm -rf -- "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

unshare -m --propagation private -- python3 "$here/peers.py" run \
    --work "$work" --popper "$popper" --popa3d "$popa3d" \
    --popa3d-deb "$(ls /var/cache/popper-bench/popa3d/popa3d_*.deb 2>/dev/null | head -1)" \
    --user "$user" --password "$password" \
    --repeats "${PB_REPEATS:-5}" --sessions "${PB_SESSIONS:-500}" --seed "${PB_SEED:-1}" \
    --small "${PB_SMALL:-100,2}" --medium "${PB_MEDIUM:-1000,50}" --large "$large" --maildir "$maildir" \
    --tls "${PB_TLS:-1}" --tls-sessions "${PB_TLS_SESSIONS:-200}" --tls-floor "$tls_floor" \
    --grow "${PB_GROW:-10000,200}" --many "${PB_MANY:-200000,200}" --rows "${PB_ROWS:-all}" \
    --out "${PB_OUT:-$here/RESULTS.md}" &
driver=$!
wait "$driver"
