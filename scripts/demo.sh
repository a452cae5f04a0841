#!/bin/bash
# `make demo`: popper under a real inetd (openbsd-inetd, in the foreground,
# on its own config file) on 127.0.0.1:${DEMO_PORT:-1110}, serving a demo
# user's mailbox. The system's /var/mail and inetd are not touched: the demo
# spool directory is bound over /var/mail in a private mount namespace.
# Ctrl-C or SIGTERM stops it and removes everything it made except the
# demo user. It is ready ("demo: ready") only once its inetd listens; a
# port in use is said so, with exit status 1.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
port=${DEMO_PORT:-1110}
popper=${POPPER:-$root/target/release/popper}
user=popdemo
pass=popdemo

[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (it creates a user and runs inetd)" >&2; exit 1; }
[ -x "$popper" ] || { echo "demo: $popper is missing; run make build" >&2; exit 1; }

getent passwd "$user" >/dev/null || useradd --create-home --user-group --shell /usr/sbin/nologin "$user"
echo "$user:$pass" | chpasswd

work=$(mktemp -d /tmp/popper-demo.XXXXXX)
inetd_pid=
cleaned=
cleanup() {
  # Once, and to the end: timeout(1), or a kill of the process group,
  # delivers the signal more than once (to the script and to its group),
  # and a second one must neither run this again nor stop it halfway.
  trap '' INT TERM
  [ -z "$cleaned" ] || return 0
  cleaned=1
  if [ -n "$inetd_pid" ]; then
    kill -TERM -- "-$inetd_pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$inetd_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$inetd_pid" 2>/dev/null || true
    wait "$inetd_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  echo "demo: stopped and cleaned up"
}
# SIGTERM always stops the demo; Ctrl-C (SIGINT) does when the demo runs
# in a terminal. (A background job of a script starts with SIGINT
# ignored, and a shell cannot trap a signal ignored at its start.)
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap cleanup EXIT

mkdir "$work/mail"
chown root:mail "$work/mail"
chmod 2775 "$work/mail"
spool="$work/mail/$user"
{
  for i in 1 2 3; do
    printf 'From demo@example.com Wed Dec  2 05:53:22 1992\n'
    printf 'From: Demo Sender <demo@example.com>\nTo: %s@localhost\n' "$user"
    printf 'Subject: demo message %s\nDate: Wed, 2 Dec 1992 05:53:22 -0800\n\n' "$i"
    printf 'This is demo message %s, served by popper.\n.A line that starts with a dot.\n\n' "$i"
  done
} > "$spool"
chown "$user:mail" "$spool"
chmod 660 "$spool"

cat > "$work/inetd.conf" <<CONF
127.0.0.1:$port stream tcp nowait root $popper popper -s -d -t $work/popper.log
CONF

# inetd in its own process group, so cleanup stops it and its sessions.
setsid unshare -m --propagation private -- /bin/sh -c '
  set -e
  mount --bind "$1" /var/mail
  mount -t tmpfs tmpfs /run
  exec /usr/sbin/inetd -d "$2"' sh "$work/mail" "$work/inetd.conf" 2>"$work/inetd.log" &
inetd_pid=$!
for _ in $(seq 100); do
  grep -q "ADD" "$work/inetd.log" 2>/dev/null && break
  sleep 0.1
done
grep -q "ADD" "$work/inetd.log" || { echo "demo: inetd did not start:" >&2; cat "$work/inetd.log" >&2; exit 1; }
# inetd says ADD before it binds, and a port that is taken only makes it
# retry later (with the reason in syslog, not on stderr): ready only when
# it is this inetd that listens.
listening=
for _ in $(seq 100); do
  kill -0 "$inetd_pid" 2>/dev/null || { echo "demo: inetd exited:" >&2; cat "$work/inetd.log" >&2; exit 1; }
  who=$(ss -Hltnp "sport = :$port" 2>/dev/null || true)
  case "$who" in
    *"pid=$inetd_pid,"*) listening=1; break ;;
    ?*)
      echo "demo: port $port (127.0.0.1:$port) is in use by another program:" >&2
      echo "$who" | sed 's/^/  /' >&2
      echo "demo: stop it, or choose another port: DEMO_PORT=11110 make demo" >&2
      exit 1 ;;
  esac
  sleep 0.1
done
[ -n "$listening" ] || { echo "demo: inetd does not listen on 127.0.0.1:$port:" >&2; cat "$work/inetd.log" >&2; exit 1; }

cat <<TEXT
popper demo: user "$user", password "$pass", 3 messages, on 127.0.0.1:$port
  list:       curl pop3://$user:$pass@127.0.0.1:$port/
  read one:   curl pop3://$user:$pass@127.0.0.1:$port/1
  by hand:    python3 -c 'import poplib; p=poplib.POP3("127.0.0.1",$port); p.user("$user"); p.pass_("$pass"); print(p.stat()); p.quit()'
  fetchmail:  fetchmail --nodetach -p POP3 -P $port -u $user --keep --mda cat --sslproto '' 127.0.0.1
              (it asks for the password: $pass)
  log:        $work/popper.log
Press Ctrl-C (or send SIGTERM) to stop.
TEXT
echo "demo: ready"
wait "$inetd_pid"
