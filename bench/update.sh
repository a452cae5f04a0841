#!/usr/bin/env bash
# The update benchmark: popper's QUIT-time update against qpopper 2.53's
# copy-the-spool-twice, on a generated ~1 GB mbox. Run as root:
#
#   bench/update.sh
#
# Knobs (environment): PB_MESSAGES (20000), PB_SIZE_MB (1000), PB_REPEATS (5),
# PB_SEED (1), PB_DROP_CACHES (1 = sync + drop caches before every run),
# PB_BASELINE_FSYNC (1), PB_WRITTEN_BACK (0; 1 = messages already carry
# X-UIDL/Status), PB_TMPDIR (/tmp), PB_USER (pb_user), PB_OUT
# (bench/RESULTS-update.md). See bench/README.md.
set -euo pipefail

started=$SECONDS
die() { echo "bench/update.sh: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it creates a user, uses mount namespaces and drops caches)"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
cd "$repo"

messages=${PB_MESSAGES:-20000}
size_mb=${PB_SIZE_MB:-1000}
repeats=${PB_REPEATS:-5}
seed=${PB_SEED:-1}
drop=${PB_DROP_CACHES:-1}
bfsync=${PB_BASELINE_FSYNC:-1}
written_back=${PB_WRITTEN_BACK:-0}
tmp=${PB_TMPDIR:-/tmp}
user=${PB_USER:-pb_user}
password="pw-${user}-bench"
out=${PB_OUT:-$here/RESULTS-update.md}

for tool in cargo python3 unshare mount cmp cp useradd chpasswd getent findmnt df; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
done
[[ -x /usr/bin/time ]] || die "needs GNU time at /usr/bin/time (Debian: apt-get install time)"
getent group mail >/dev/null || die "there is no 'mail' group"

if [[ $drop == 1 ]] && ! ( : >/proc/sys/vm/drop_caches ) 2>/dev/null; then
    echo "note: /proc/sys/vm/drop_caches is not writable: running with a warm page cache" >&2
    drop=0
fi

# 1. popper, release build.
echo "building popper (release) ..."
cargo build --release --locked -p popper
popper="$repo/target/release/popper"
[[ -x $popper ]] || die "no $popper after the build"

# The bench user, with a known password (made once, repaired every run).
if ! getent passwd "$user" >/dev/null; then
    useradd --create-home --user-group --shell /bin/sh "$user" || die "useradd $user failed"
fi
echo "$user:$password" | chpasswd || die "chpasswd $user failed"
(( $(id -u "$user") > 10 )) || die "$user has uid $(id -u "$user"), at or below popper's BLOCK_UID"

# 2. Disk: the pristine copy, the spool, and the journal or the temporary
# drop while a session runs: about 3x the mailbox; ask for 4 GB at least.
need=$(( size_mb * 1000000 * 4 ))
(( need < 4000000000 )) && need=4000000000
avail=$(df --output=avail -B1 "$tmp" | tail -n 1 | tr -d ' ')
(( avail >= need )) || die "only $((avail / 1000000)) MB free on $tmp ($(findmnt -no TARGET -T "$tmp")); need $((need / 1000000)) MB"

work=$(mktemp -d "$tmp/popper-bench.XXXXXX")
logs=$(mktemp -d /dev/shm/popper-bench-log.XXXXXX 2>/dev/null || mktemp -d "$tmp/popper-bench-log.XXXXXX")
driver=

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $driver ]] && kill -0 "$driver" 2>/dev/null; then
        kill -TERM "$driver" 2>/dev/null || true
        wait "$driver" 2>/dev/null || true
    fi
    rm -rf -- "$work" "$logs"
    echo "bench/update.sh: removed $work" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "work dir: $work ($(findmnt -no FSTYPE -T "$work"), $((avail / 1000000)) MB free)"

# 3-6. Generate, run, check, print and write the table. The driver runs in
# the background so that an interrupt reaches this script at once; the trap
# then stops the driver (SIGTERM: it kills its sessions) and removes the
# multi-GB work dir.
python3 "$here/update.py" run \
    --work "$work" --log-dir "$logs" --popper "$popper" \
    --user "$user" --password "$password" \
    --messages "$messages" --size-mb "$size_mb" --seed "$seed" --repeats "$repeats" \
    --drop-caches "$drop" --baseline-fsync "$bfsync" --written-back "$written_back" \
    --prep-seconds "$(( SECONDS - started ))" --out "$out" &
driver=$!
wait "$driver"
