#!/bin/bash
# Installs what popper's build, demo and tests need on a Debian 12 machine.
# Idempotent: a second run installs nothing and changes nothing.
#
#   scripts/setup.sh build   libraries the build links against
#   scripts/setup.sh demo    + a real inetd and the clients the demo prints
#   scripts/setup.sh test    + every program the end-to-end tests drive
#   scripts/setup.sh bench   + the peers make bench measures (Dovecot; popa3d unpacked)
set -euo pipefail

what=${1:-test}
build_pkgs=(build-essential pkg-config libcrypt-dev libgdbm-dev libdb5.3-dev)
demo_pkgs=(openbsd-inetd curl fetchmail iproute2)
test_pkgs=(openbsd-inetd tcpd curl fetchmail mpop procmail ucspi-tcp checkpw strace openssl
  gdbmtool python3 python3-gdbm libgdbm-compat-dev liblockfile-bin util-linux iproute2 groff man-db time
  haproxy perdition)

case "$what" in
  build) pkgs=("${build_pkgs[@]}") ;;
  demo) pkgs=("${build_pkgs[@]}" "${demo_pkgs[@]}") ;;
  test) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  bench) pkgs=("${build_pkgs[@]}" openbsd-inetd dovecot-pop3d python3 util-linux openssl haproxy iproute2) ;;
  *) echo "usage: $0 build|demo|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: these Debian packages are missing and only root can install them: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Packages must not start services of their own here (inetd on port 110).
  policy=/usr/sbin/policy-rc.d
  made_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; made_policy=1
  fi
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  [ -n "$made_policy" ] && rm -f "$policy"
fi

# popauth runs setuid `pop` (qpopper's POPUID): the tests and `make install`
# need that system account; Debian has none by default.
if [ "$what" = test ] && ! getent passwd pop >/dev/null; then
  adduser --system --group --no-create-home --home /nonexistent --quiet pop
fi

# xinetd conflicts with openbsd-inetd (both are inet-superserver), and the
# tests need both: xinetd's binary is unpacked from its Debian package into
# a private directory instead of being installed.
xinetd_dir=/var/cache/popper-test/xinetd
if [ "$what" = test ] && [ ! -x "$xinetd_dir/usr/sbin/xinetd" ]; then
  tmp=$(mktemp -d)
  chown _apt "$tmp" 2>/dev/null || true
  mkdir -p "$xinetd_dir"
  (cd "$tmp" && apt-get download -q xinetd >/dev/null && dpkg -x xinetd_*.deb "$xinetd_dir")
  rm -rf "$tmp"
  "$xinetd_dir/usr/sbin/xinetd" -version >/dev/null 2>&1 || { echo "setup: unpacked xinetd does not run" >&2; exit 1; }
fi

# popa3d conflicts with dovecot-pop3d (both provide pop3-server), and the
# benchmark needs both: popa3d is unpacked from its Debian package instead,
# with the account and the empty chroot directory its postinst would make.
popa3d_dir=/var/cache/popper-bench/popa3d
if [ "$what" = bench ]; then
  if [ ! -x "$popa3d_dir/usr/sbin/popa3d" ]; then
    tmp=$(mktemp -d)
    # apt downloads as _apt where it can.
    chown _apt "$tmp" 2>/dev/null || true
    (cd "$tmp" && apt-get download -q popa3d >/dev/null && mkdir -p "$popa3d_dir" \
      && cp popa3d_*.deb "$popa3d_dir/" && dpkg -x popa3d_*.deb "$popa3d_dir")
    rm -rf "$tmp"
  fi
  getent group popa3d >/dev/null || addgroup --system --quiet popa3d
  getent passwd popa3d >/dev/null || adduser --system --quiet --home /var/lib/popa3d --no-create-home --ingroup popa3d popa3d
  install -d -m 755 -o root -g root /var/lib/popa3d
fi

# The Rust toolchain comes with the machine; say so clearly if it does not.
command -v cargo >/dev/null || { echo "setup: cargo is not on PATH" >&2; exit 1; }
