#!/usr/bin/env python3
"""bench/proxy.sh's driver, run inside its network and mount namespaces.

One openbsd-inetd serves the same popper three ways: 127.0.0.1:11010 with
PROXY off (direct), 127.0.0.1:11011 and 127.0.0.2:11011 with
proxy-trusted-networks = 127.0.0.0/8 (the backends). HAProxy (TCP mode,
send-proxy-v2, as packaging/haproxy.cfg, without health checks so that
they do not run during a measurement) listens on 12001 (one backend) and
12002 (both, round robin). A session is: connect, greeting, USER, PASS,
STAT, QUIT, sign-off; PB_CONCURRENCY clients at once; rows interleaved,
the median of the repeats printed."""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

p = argparse.ArgumentParser()
for k in ("work", "popper", "user", "password"):
    p.add_argument("--" + k, required=True)
for k in ("sessions", "repeats", "concurrency"):
    p.add_argument("--" + k, type=int, required=True)
a = p.parse_args()

mail = os.path.join(a.work, "mail")
os.makedirs(mail)
shutil.chown(mail, "root", "mail")
os.chmod(mail, 0o2775)
subprocess.run(["mount", "--bind", mail, "/var/mail"], check=True)
spool = os.path.join(mail, a.user)
with open(spool, "wb") as f:
    for i in range(10):
        f.write(b"From bench@example.org Wed Dec  2 05:53:22 1992\nSubject: m%d\n\n%s\n\n" % (i, b"x" * 2000))
shutil.chown(spool, a.user, "mail")
os.chmod(spool, 0o660)

conf = {}
for name, extra in (("plain", ""), ("proxy", "set proxy-trusted-networks = 127.0.0.0/8\n")):
    conf[name] = os.path.join(a.work, f"{name}.conf")
    with open(conf[name], "w") as f:
        f.write("set auth-fail-delay = 0\n" + extra)
lines = [
    f"127.0.0.1:11010 stream tcp nowait.10000 root {a.popper} popper -f {conf['plain']}",
    f"127.0.0.1:11011 stream tcp nowait.10000 root {a.popper} popper -f {conf['proxy']}",
    f"127.0.0.2:11011 stream tcp nowait.10000 root {a.popper} popper -f {conf['proxy']}",
]
inetd_conf = os.path.join(a.work, "inetd.conf")
with open(inetd_conf, "w") as f:
    f.write("\n".join(lines) + "\n")
haproxy_cfg = os.path.join(a.work, "haproxy.cfg")
with open(haproxy_cfg, "w") as f:
    f.write("""global
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 11m
    timeout server 11m
frontend one
    bind 127.0.0.1:12001
    default_backend one
frontend two
    bind 127.0.0.1:12002
    default_backend two
backend one
    default-server send-proxy-v2
    server pop1 127.0.0.1:11011
backend two
    balance roundrobin
    default-server send-proxy-v2
    server pop1 127.0.0.1:11011
    server pop2 127.0.0.2:11011
""")
procs = [
    subprocess.Popen(["/usr/sbin/inetd", "-d", inetd_conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    subprocess.Popen(["/usr/sbin/haproxy", "-db", "-f", haproxy_cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
]

V2 = b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + bytes([192, 0, 2, 7, 127, 0, 0, 1]) + b"\x9c\x40\x00\x6e"
LOGIN = f"USER {a.user}\r\nPASS {a.password}\r\n".encode()


def session(port, header):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    if header:
        s.sendall(header)
    assert f.readline().startswith(b"+OK")
    for cmd in (b"USER " + a.user.encode() + b"\r\n", b"PASS " + a.password.encode() + b"\r\n", b"STAT\r\n", b"QUIT\r\n"):
        s.sendall(cmd)
        r = f.readline()
        assert r.startswith(b"+OK"), (port, cmd, r)
    f.close()
    s.close()


def run(port, header, n):
    left = [n]
    lock = threading.Lock()
    errors = []

    def worker():
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            try:
                session(port, header)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
                return

    t0 = time.monotonic()
    ts = [threading.Thread(target=worker) for _ in range(a.concurrency)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise SystemExit(f"bench/proxy.py: a session failed: {errors[0]!r}")
    return n / (time.monotonic() - t0)


deadline = time.monotonic() + 20
for port in (11010, 12001, 12002):
    while True:
        try:
            session(port, V2 if port == 11011 else None)
            break
        except (OSError, AssertionError):
            if time.monotonic() > deadline:
                raise SystemExit(f"bench/proxy.py: nothing answers on {port}")
            time.sleep(0.05)

rows = [
    ("direct (PROXY off)", 11010, None),
    ("direct + PROXY v2 header", 11011, V2),
    ("HAProxy, 1 backend", 12001, None),
    ("HAProxy, 2 backends", 12002, None),
]
results = {r[0]: [] for r in rows}
try:
    for _ in range(a.repeats):
        for name, port, header in rows:
            results[name].append(run(port, header, a.sessions))
finally:
    for pr in procs:
        pr.terminate()
        pr.wait()

base = statistics.median(results[rows[0][0]])
print(f"\nPROXY row: {a.sessions} sessions x {a.repeats} repeats, {a.concurrency} clients at once "
      f"(USER/PASS/STAT/QUIT on a 10-message spool), median sessions/s")
print(f"| {'setup':<26} | {'sessions/s':>10} | {'vs direct':>9} | {'per session':>11} |")
print(f"|{'-' * 28}|{'-' * 12}|{'-' * 11}|{'-' * 13}|")
for name, _, _ in rows:
    m = statistics.median(results[name])
    print(f"| {name:<26} | {m:>10.0f} | {m / base:>8.2f}x | {1000 / m:>8.2f} ms |")
hdr = statistics.median(results[rows[1][0]])
print(f"\nthe PROXY header's cost: {1000 / hdr - 1000 / base:+.3f} ms a session "
      f"({(base / hdr - 1) * 100:+.1f} %; the spread of the direct runs: "
      f"{min(results[rows[0][0]]):.0f}-{max(results[rows[0][0]]):.0f} sessions/s)")
