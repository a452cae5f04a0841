#!/bin/bash
# Installs what popper's build, demo and tests need on a Debian 12 machine.
# Idempotent: a second run installs nothing and changes nothing.
#
#   scripts/setup.sh build   libraries the build links against
#   scripts/setup.sh demo    + a real inetd and the clients the demo prints
#   scripts/setup.sh test    + every program the end-to-end tests drive
set -euo pipefail

what=${1:-test}
build_pkgs=(build-essential pkg-config libcrypt-dev libgdbm-dev)
demo_pkgs=(openbsd-inetd curl fetchmail)
test_pkgs=(openbsd-inetd tcpd curl fetchmail mpop procmail ucspi-tcp strace
  gdbmtool python3 python3-gdbm liblockfile-bin util-linux iproute2 groff man-db time)

case "$what" in
  build) pkgs=("${build_pkgs[@]}") ;;
  demo) pkgs=("${build_pkgs[@]}" "${demo_pkgs[@]}") ;;
  test) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "usage: $0 build|demo|test" >&2; exit 2 ;;
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
  (cd "$tmp" && apt-get download -q xinetd >/dev/null && dpkg -x xinetd_*.deb "$xinetd_dir")
  rm -rf "$tmp"
  "$xinetd_dir/usr/sbin/xinetd" -version >/dev/null 2>&1 || { echo "setup: unpacked xinetd does not run" >&2; exit 1; }
fi

# The Rust toolchain comes with the machine; say so clearly if it does not.
command -v cargo >/dev/null || { echo "setup: cargo is not on PATH" >&2; exit 1; }
