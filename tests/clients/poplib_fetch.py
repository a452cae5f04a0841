#!/usr/bin/python3
"""Downloads a mailbox with Python's poplib, as a real client would.

usage: poplib_fetch.py PORT USER SECRET OUTDIR [--apop] [--dele] [--top N]
                      [--source ADDRESS]

Writes OUTDIR/stat.txt ("count size"), OUTDIR/list.txt and OUTDIR/uidl.txt
(the listings, one "n value" per line), and OUTDIR/N.msg for each message:
the lines RETR returned (dot-stuffing undone by poplib), each with CRLF.
With --dele every message is deleted after it is retrieved; QUIT ends the
session. --source connects from that local address (127.0.0.2 looks like
another host to tcp_wrappers). Any protocol error raises (non-zero exit
with a traceback).
"""
import os
import poplib
import socket
import sys

# Test mail has lines far longer than poplib's default limit of 2048.
poplib._MAXLINE = 1 << 20

port, user, secret, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
flags = sys.argv[5:]


class SourcedPOP3(poplib.POP3):
    """poplib.POP3 connecting from a chosen local address."""

    source = None

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=self.source)


if "--source" in flags:
    SourcedPOP3.source = (flags[flags.index("--source") + 1], 0)
p = SourcedPOP3("127.0.0.1", port, timeout=60)
if "--apop" in flags:
    p.apop(user, secret)
else:
    p.user(user)
    p.pass_(secret)
count, size = p.stat()
with open(os.path.join(out, "stat.txt"), "w") as f:
    f.write(f"{count} {size}\n")
_, listing, _ = p.list()
with open(os.path.join(out, "list.txt"), "wb") as f:
    f.write(b"".join(l + b"\n" for l in listing))
_, uidls, _ = p.uidl()
with open(os.path.join(out, "uidl.txt"), "wb") as f:
    f.write(b"".join(l + b"\n" for l in uidls))
for i in range(1, count + 1):
    if "--top" in flags:
        n = int(flags[flags.index("--top") + 1])
        _, lines, _ = p.top(i, n)
    else:
        _, lines, _ = p.retr(i)
    with open(os.path.join(out, f"{i}.msg"), "wb") as f:
        f.write(b"".join(l + b"\r\n" for l in lines))
    if "--dele" in flags:
        p.dele(i)
print(p.quit().decode())
