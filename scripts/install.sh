#!/bin/bash
# make install / make uninstall, as the qpopper guides laid it out:
#   PREFIX/lib/popper, PREFIX/lib/popper.apop     (inetd runs them)
#   PREFIX/bin/popauth  owner pop:pop, mode 6755  (users change their APOP secret)
#   PREFIX/share/man/man8/popper.8, popauth.8
# The `pop` system user and group are created if missing (install only).
# PREFIX defaults to /usr/local; BIN is where the built binaries are.
set -euo pipefail

what=${1:?usage: install.sh install|uninstall}
root=$(cd "$(dirname "$0")/.." && pwd)
prefix=${PREFIX:-/usr/local}
bin=${BIN:-$root/target/release}

files=("$prefix/lib/popper" "$prefix/lib/popper.apop" "$prefix/bin/popauth"
  "$prefix/share/man/man8/popper.8" "$prefix/share/man/man8/popauth.8")

case "$what" in
  install)
    for b in popper popper.apop popauth; do
      [ -x "$bin/$b" ] || { echo "install: $bin/$b is missing; run make build" >&2; exit 1; }
    done
    if ! getent passwd pop >/dev/null; then
      adduser --system --group --no-create-home --home /nonexistent --quiet pop
    fi
    install -d -m 755 "$prefix/lib" "$prefix/bin" "$prefix/share/man/man8"
    install -m 755 -o root -g root "$bin/popper" "$prefix/lib/popper"
    install -m 755 -o root -g root "$bin/popper.apop" "$prefix/lib/popper.apop"
    # Installed under a temporary name and renamed, so the setuid file is
    # never there with the wrong owner or mode.
    install -m 755 -o pop -g pop "$bin/popauth" "$prefix/bin/.popauth.new"
    chmod 6755 "$prefix/bin/.popauth.new"
    mv -f "$prefix/bin/.popauth.new" "$prefix/bin/popauth"
    install -m 644 "$root/man/popper.8" "$root/man/popauth.8" "$prefix/share/man/man8/"
    echo "installed in $prefix; add to /etc/inetd.conf:"
    echo "  pop3 stream tcp nowait root $prefix/lib/popper popper -s -d"
    ;;
  uninstall)
    rm -f "${files[@]}"
    echo "removed popper from $prefix (the pop user and /etc/pop.auth are kept)"
    ;;
  *) echo "usage: install.sh install|uninstall" >&2; exit 2 ;;
esac
