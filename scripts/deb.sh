#!/bin/bash
# make deb: a Debian package of the release build, made with dpkg-deb.
#
#   /usr/sbin/popper, /usr/sbin/popper.apop     inetd runs them
#   /usr/bin/popauth                           pop:pop 6755, set by postinst
#                                              with dpkg-statoverride
#   /usr/share/man/man8/{popper,popauth}.8.gz
#   /usr/share/doc/popper/examples/            packaging/ with /usr/sbin paths
#
# The maintainer scripts create the `pop` system account if it is missing
# and set popauth's owner and mode; they enable no service and touch no
# inetd.conf: the administrator adds the line (README.Debian says how).
# The archive itself holds popauth as root 0755, so unpacking never makes a
# setuid file that dpkg does not know about.
#
# BIN is where the built binaries are (default target/release); OUT is the
# directory the .deb is written to (default target/debian). Prints its path.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/target/release}
out=${OUT:-$root/target/debian}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
arch=$(dpkg --print-architecture)
pkg=popper

for b in popper popper.apop popauth; do
  [ -x "$bin/$b" ] || { echo "deb: $bin/$b is missing; run make build" >&2; exit 1; }
done
mkdir -p "$out"
# A private staging directory, so two builds at once do not meet.
stage=$(mktemp -d "$out/stage.XXXXXX")
shdir=$(mktemp -d)
trap 'rm -rf "$stage" "$shdir"' EXIT
chmod 755 "$stage"
mkdir -p "$stage/DEBIAN" "$stage/usr/sbin" "$stage/usr/bin" \
  "$stage/usr/share/man/man8" "$stage/usr/share/doc/$pkg/examples"

install -m 755 "$bin/popper" "$bin/popper.apop" "$stage/usr/sbin/"
install -m 755 "$bin/popauth" "$stage/usr/bin/"
strip --strip-unneeded "$stage/usr/sbin/popper" "$stage/usr/sbin/popper.apop" "$stage/usr/bin/popauth"
for m in popper.8 popauth.8; do
  gzip -9n < "$root/man/$m" > "$stage/usr/share/man/man8/$m.gz"
done

# The examples, with the package's paths instead of the seeds' /usr/local/lib.
(cd "$root/packaging" && find . -type f) | while read -r f; do
  dst=$stage/usr/share/doc/$pkg/examples/${f#./}
  mkdir -p "$(dirname "$dst")"
  sed -e 's|/usr/local/lib/popper|/usr/sbin/popper|g' -e 's|PATH=/usr/local/lib|PATH=/usr/sbin|g' \
    "$root/packaging/$f" > "$dst"
  chmod --reference="$root/packaging/$f" "$dst"
done
install -m 644 "$root/README.md" "$stage/usr/share/doc/$pkg/README.md"
cat > "$stage/usr/share/doc/$pkg/README.Debian" <<END
popper for Debian
=================

This package installs popper and enables nothing: no inetd.conf line, no
systemd socket. To serve POP3 from openbsd-inetd, add this line to
/etc/inetd.conf and reload inetd (service openbsd-inetd reload):

  pop3 stream tcp nowait root /usr/sbin/popper popper -s -d

The examples directory has the same for tcpd (with hosts.allow), xinetd,
systemd socket activation and tcpserver, with this package's paths, and
for TLS (STLS on port 110, TLS on port 995): inetd.conf.tls,
xinetd.d/popper-pop3s, systemd/popper-pop3s.socket and
systemd/popper-pop3s@.service, with popper.conf to copy to
/etc/popper.conf and complete with the certificate and key.

popauth is setuid pop (mode 6755, set with dpkg-statoverride); start the
APOP database with "popauth -init". Purging the package leaves
/etc/pop.auth and the pop account in place: they may hold secrets users
still need, and qpopper uses the same.
END
cat > "$stage/usr/share/doc/$pkg/copyright" <<END
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: popper

Files: *
License: MIT
END
printf '%s (%s) unstable; urgency=medium\n\n  * Package built by make deb.\n\n -- popper maintainers <root@localhost>  %s\n' \
  "$pkg" "$version" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}")" \
  | gzip -9n > "$stage/usr/share/doc/$pkg/changelog.Debian.gz"

# Shared library dependencies, as dpkg-shlibdeps works them out.
mkdir -p "$shdir/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$pkg" "$pkg" > "$shdir/debian/control"
shlibs=$(cd "$shdir" && dpkg-shlibdeps -O "$stage/usr/sbin/popper" "$stage/usr/sbin/popper.apop" \
  "$stage/usr/bin/popauth" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<END
Package: $pkg
Version: $version
Architecture: $arch
Maintainer: popper maintainers <root@localhost>
Installed-Size: $size
Depends: $shlibs, adduser
Suggests: openbsd-inetd | inet-superserver, tcpd
Provides: pop3-server
Conflicts: qpopper
Replaces: qpopper
Section: mail
Priority: optional
Homepage: https://example.invalid/popper
Description: POP3/APOP server compatible with Qualcomm qpopper
 A memory-safe reimplementation of qpopper 2.53 and its popauth tool: the
 same flags, inetd.conf line, replies, UIDs and /etc/pop.auth, serving mbox
 spools in /var/mail with crash-safe updates.
 .
 Nothing is enabled on installation; see README.Debian.
END

cat > "$stage/DEBIAN/postinst" <<'END'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    if ! getent passwd pop >/dev/null; then
        adduser --system --group --no-create-home --home /nonexistent --quiet pop
    fi
    if ! dpkg-statoverride --list /usr/bin/popauth >/dev/null 2>&1; then
        dpkg-statoverride --update --add pop pop 6755 /usr/bin/popauth
    fi
fi
exit 0
END
cat > "$stage/DEBIAN/postrm" <<'END'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
    if dpkg-statoverride --list /usr/bin/popauth >/dev/null 2>&1; then
        dpkg-statoverride --remove /usr/bin/popauth
    fi
fi
exit 0
END
chmod 755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/postrm"
(cd "$stage" && find usr -type f -print0 | sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
chmod 644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"

deb=$out/${pkg}_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$stage.deb" >/dev/null
mv -f "$stage.deb" "$deb"
echo "$deb"
