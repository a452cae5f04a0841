#!/usr/bin/env python3
"""popper against popa3d and Dovecot, side by side (bench/peers.sh runs it;
see bench/README.md).

    peers.py run --work DIR --popper BIN --popa3d BIN --user U --password P ...

Runs in a private mount namespace (bench/peers.sh makes it): the work
directory's mail/ is bound over /var/mail and a private home over the user's,
so no system file is touched. Inside, one openbsd-inetd serves popper, popa3d
and the two floors (a trivial program; `cat` of the mailbox) on loopback
ports, and Dovecot runs as its own pop3 service on another, all as they are
deployed; for the TLS rows popper -l 2 and bench/tls-floor from the same
inetd, and a Dovecot with ssl = required. One client (this file) drives every
server the same way; every scenario runs the servers interleaved (popper,
popa3d, Dovecot, popper, ...), each reply is checked, and the table of
medians and ratios is printed and written to bench/RESULTS.md.

Every failure raises BenchError: the message is printed, the exit status is
1, and the run stops.
"""

import argparse
import calendar
import mmap
import os
import random
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import update as gen  # noqa: E402  (the seeded mailbox generator and helpers)

BenchError = gen.BenchError
SERVERS = ["popper", "popa3d", "dovecot"]
# popa3d answers one RETR at a time only after the client's delayed ACK
# (~40 ms: it does not set TCP_NODELAY), so its one-at-a-time (c) and (d)
# runs of a mailbox with more messages than this are not made (20 000
# messages would take some 15 minutes a run); the medium rows show it.
POPA3D_MAX_RETR = 2500


# --------------------------------------------------------------------------
# The client


class Pop:
    """A minimal POP3 client over a TCP socket: one command at a time, as
    fetchmail and most clients talk; multi-line bodies are counted, not kept,
    unless asked for."""

    def __init__(self, port, tls=None):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=600)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            # Implicit TLS (port 995): the handshake before the greeting.
            self.s = tls.wrap_socket(self.s, server_hostname="localhost")
        self.buf = bytearray(4 << 20)
        self.view = memoryview(self.buf)
        self.pending = b""
        self.local_port = self.s.getsockname()[1]

    def _recv(self):
        n = self.s.recv_into(self.buf)
        if n == 0:
            raise BenchError("the server closed the connection")
        return self.view[:n]

    def line(self):
        while b"\r\n" not in self.pending:
            self.pending += bytes(self._recv())
        line, _, self.pending = self.pending.partition(b"\r\n")
        return line.decode(errors="replace")

    def cmd(self, text, want="+OK"):
        self.s.sendall(text.encode() + b"\r\n")
        r = self.line()
        if not r.startswith(want):
            raise BenchError(f"{text.split()[0]}: {r}")
        return r

    def multi(self, text, keep=False):
        """Sends a command with a multi-line answer; returns (status line,
        body bytes received, the body if `keep`). The body ends at the
        first CRLF.CRLF: dot-stuffing keeps it out of the body, and nothing
        is pipelined behind the command."""
        status = self.cmd(text)
        data, self.pending = self.pending, b""
        kept = [data] if keep else None
        total = len(data)
        # The status line's CRLF begins the terminator of an empty body.
        tail = (b"\r\n" + data)[-5:]
        while not tail.endswith(b"\r\n.\r\n"):
            chunk = self._recv()
            total += len(chunk)
            tail = (tail + bytes(chunk[-5:]))[-5:]
            if keep:
                kept.append(bytes(chunk))
        return status, total, (b"".join(kept) if keep else None)

    def close(self):
        self.s.close()


def session_pids(server_port, client_port):
    """The processes holding the server's end of a connection."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            local, remote, inode = f[1], f[2], f[9]
            if int(local.rsplit(":", 1)[1], 16) == server_port and int(remote.rsplit(":", 1)[1], 16) == client_port:
                inodes.add(f"socket:[{inode}]")
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{d}/fd"):
                if os.readlink(f"/proc/{d}/fd/{fd}") in inodes:
                    pids.append(int(d))
                    break
        except OSError:
            continue
    return pids


def hwm(pid):
    """VmHWM of a live process in bytes, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class Memory:
    """The peak RSS of the processes serving a session: `overall` as read
    right after login (for popper and popa3d this includes the password
    hash), then the high-water mark is reset (clear_refs 5, DECISIONS.md)
    and sampled every 2 ms until the session ends: `mailbox`."""

    def __init__(self, server_port, client_port):
        self.pids = []
        for _ in range(200):
            self.pids = session_pids(server_port, client_port)
            if self.pids:
                break
            time.sleep(0.005)
        if not self.pids:
            raise BenchError("cannot find the process serving the session")
        self.overall = max(hwm(p) or 0 for p in self.pids)
        for p in self.pids:
            try:
                with open(f"/proc/{p}/clear_refs", "w") as f:
                    f.write("5\n")
            except OSError:
                pass
        self.mailbox = max(hwm(p) or 0 for p in self.pids)
        self.done = threading.Event()
        self.t = threading.Thread(target=self._sample, daemon=True)
        self.t.start()

    def _sample(self):
        while not self.done.is_set():
            alive = False
            for p in self.pids:
                v = hwm(p)
                if v is not None:
                    alive = True
                    self.mailbox = max(self.mailbox, v)
            if not alive:
                return
            time.sleep(0.002)

    def stop(self):
        # The session is over: the process is exiting; one more look.
        time.sleep(0.01)
        self.done.set()
        self.t.join()
        self.overall = max(self.overall, self.mailbox)


# --------------------------------------------------------------------------
# Scenarios


def login(a, port, tls=None):
    p = Pop(port, tls)
    g = p.line()
    if not g.startswith("+OK"):
        raise BenchError(f"greeting: {g}")
    p.cmd(f"USER {a.user}")
    p.cmd(f"PASS {a.password}")
    return p


def stat(p):
    r = p.cmd("STAT").split()
    return int(r[1]), int(r[2])


def quit(p):
    p.cmd("QUIT")
    # The server closes after its sign-off: wait for it (the update is done
    # by then for popper; the others may still be exiting).
    try:
        while p.s.recv(65536):
            pass
    except OSError:
        pass
    p.close()


def sessions(a, port, n, tls=None):
    """(a): n sequential USER/PASS + STAT + QUIT sessions; sessions/s.
    With `tls` (a client context), each session over implicit TLS: a full
    handshake before the greeting, as on port 995."""
    t0 = time.monotonic()
    for _ in range(n):
        p = login(a, port, tls)
        count, _ = stat(p)
        if count != a.small_count:
            raise BenchError(f"STAT says {count} messages, the small mailbox has {a.small_count}")
        quit(p)
    return {"rate": n / (time.monotonic() - t0)}


def check(a, port, count):
    """(b): login + STAT + UIDL + QUIT."""
    t0 = time.monotonic()
    p = login(a, port)
    mem = Memory(port, p.local_port)
    n, _ = stat(p)
    _, _, body = p.multi("UIDL", keep=True)
    uids = body.count(b"\r\n") - 1
    if n != count or uids != count:
        raise BenchError(f"UIDL: {n} messages by STAT, {uids} UIDs, want {count}")
    quit(p)
    t = time.monotonic() - t0
    mem.stop()
    return {"time": t, "rss": mem.mailbox, "rss_all": mem.overall}


def download(a, port, count, delete, tls=None):
    """(c) RETR every message, or (d) RETR and DELE every message; QUIT."""
    t0 = time.monotonic()
    p = login(a, port, tls)
    mem = Memory(port, p.local_port)
    n, _ = stat(p)
    if n != count:
        raise BenchError(f"STAT: {n} messages, want {count}")
    t1 = time.monotonic()
    got = 0
    for i in range(1, n + 1):
        _, b, _ = p.multi(f"RETR {i}")
        got += b
        if delete:
            p.cmd(f"DELE {i}")
    t2 = time.monotonic()
    quit(p)
    t3 = time.monotonic()
    mem.stop()
    return {
        "time": t3 - t0,
        "mbps": got / (t2 - t1) / 1e6,
        "bytes": got,
        "quit": t3 - t2,
        "rss": mem.mailbox,
        "rss_all": mem.overall,
    }


def download_pipelined(a, port, count, tls=None):
    """(c) pipelined: every RETR sent at once (RFC 2449 PIPELINING; popper,
    popa3d and Dovecot all read commands queued behind one another), the
    replies counted as they stream back. What the server can send when the
    client never waits a round trip; compare it with the `cat` floor.
    Over TLS the commands are sent before the first read, from this
    thread (an SSL connection must not be used by two threads at once);
    they fit in the socket buffers, so nothing waits for the reader."""
    p = login(a, port, tls)
    n, _ = stat(p)
    if n != count:
        raise BenchError(f"STAT: {n} messages, want {count}")
    p.s.settimeout(None)
    commands = b"".join(b"RETR %d\r\n" % i for i in range(1, n + 1))
    sender_error = []

    def send():
        try:
            p.s.sendall(commands)
        except OSError as e:
            sender_error.append(e)

    t1 = time.monotonic()
    if tls is not None:
        if len(commands) > 1 << 20:
            raise BenchError("pipelined RETR over TLS: too many commands to send before reading")
        sender = threading.Thread(target=lambda: None)
        send()
    else:
        sender = threading.Thread(target=send)
    sender.start()
    # Each reply ends CRLF.CRLF, which dot-stuffing keeps out of bodies;
    # one reply's terminator cannot overlap the next reply's "+OK".
    data = p.pending
    p.pending = b""
    done = data.count(b"\r\n.\r\n")
    got = len(data)
    tail = data[-4:]
    buf = p.buf
    while done < n:
        k = p.s.recv_into(buf)
        if k == 0:
            raise BenchError("the server closed the connection")
        got += k
        # Counted in place (the client must not be the bottleneck): the
        # terminators inside this chunk, and one that straddles the last.
        done += buf.count(b"\r\n.\r\n", 0, k) + (tail + bytes(buf[:min(k, 4)])).count(b"\r\n.\r\n")
        tail = (tail + bytes(buf[max(0, k - 4):k]))[-4:]
    t2 = time.monotonic()
    sender.join()
    if sender_error:
        raise BenchError(f"pipelined RETR: {sender_error[0]}")
    if done != n:
        raise BenchError(f"pipelined RETR: {done} replies for {n} commands")
    quit(p)
    return {"mbps": got / (t2 - t1) / 1e6, "time": t2 - t1, "bytes": got}


def refusal(a, port):
    """None if the server serves the mailbox (PASS and STAT say +OK), else
    what it said (a server may refuse a mailbox over a compiled-in size)."""
    p = Pop(port)
    p.line()
    p.cmd(f"USER {a.user}")
    try:
        p.cmd(f"PASS {a.password}")
        p.cmd("STAT")
    except BenchError as e:
        p.close()
        return str(e)
    quit(p)
    return None


def qpopper_copies(a, src, keep):
    """What qpopper 2.53 does to the spool in a session, alone (qpopper.md
    §9.3, §9.6; as bench/update.py's baseline): copy the spool to the
    temporary drop and empty it; at QUIT copy the kept mail back (`keep`:
    all of it for a check, none after deleting everything), fsync, remove
    the drop. On a copy of the mailbox beside the real spool, so it never
    disturbs a server's view of it. A lower bound for a qpopper session:
    it leaves out all of qpopper's POP work."""
    spool_path = os.path.join(a.work, "qpopper-spool")
    temp_path = os.path.join(a.work, ".qpopper-spool.pop")
    shutil.copyfile(src, spool_path)
    os.sync()
    t0 = time.monotonic()
    spool = os.open(spool_path, os.O_RDWR)
    size = os.fstat(spool).st_size
    temp = os.open(temp_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    gen.copy_range(spool, temp, 0, size, 0)
    os.ftruncate(spool, 0)
    if keep:
        gen.copy_range(temp, spool, 0, size, 0)
        os.fsync(spool)
    os.ftruncate(temp, 0)
    os.close(temp)
    os.unlink(temp_path)
    os.close(spool)
    t = time.monotonic() - t0
    os.unlink(spool_path)
    return {"time": t}


def spawn_floor(port, n, tls=None):
    """A trivial program from the same inetd: connect, greeting, QUIT.
    With `tls`: bench/tls-floor instead, the TLS handshake before the greeting."""
    t0 = time.monotonic()
    for _ in range(n):
        p = Pop(port, tls)
        if not p.line().startswith("+OK"):
            raise BenchError("spawn floor: no greeting")
        try:
            p.s.sendall(b"QUIT\r\n")
            while p.s.recv(65536):
                pass
        except OSError:
            pass
        p.close()
    return {"rate": n / (time.monotonic() - t0)}


def cat_floor(port, size, tls=None):
    """`cat` of the mailbox through the same inetd and socket path, read by
    the same loop as the pipelined RETR (which counts reply terminators in
    every chunk: at these rates that is a good part of the client's CPU),
    so that the floor is what this client can receive at all. With `tls`:
    through bench/tls-floor, timed from the end of the handshake."""
    s = socket.create_connection(("127.0.0.1", port), timeout=600)
    if tls is not None:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s = tls.wrap_socket(s, server_hostname="localhost")
    buf = bytearray(4 << 20)
    t0 = time.monotonic()
    got = 0
    seen = 0
    while True:
        k = s.recv_into(buf)
        if k == 0:
            break
        got += k
        seen += buf.count(b"\r\n.\r\n", 0, k)
    t = time.monotonic() - t0
    s.close()
    if got != size:
        raise BenchError(f"cat floor: {got} bytes, the mailbox has {size}")
    return {"mbps": got / t / 1e6, "time": t}


def round_trip(port, n=2000, tls=None):
    """One request-response round trip through the same inetd and socket
    path (`cat` echoing a command-sized line): median of n. With `tls`:
    through bench/tls-floor echoing."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls is not None:
        s = tls.wrap_socket(s, server_hostname="localhost")
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        s.sendall(b"RETR 1\r\n")
        got = b""
        while len(got) < 8:
            k = s.recv(64)
            if not k:
                raise BenchError("echo floor: closed")
            got += k
        times.append(time.perf_counter() - t0)
    s.close()
    return statistics.median(times)


def hash_cost(password, user):
    """What verifying the user's password hash costs here (libxcrypt, as all
    three servers use it): median of 15."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import crypt  # libcrypt's crypt(3), as the servers use it

    h = None
    for line in open("/etc/shadow"):
        f = line.split(":")
        if f[0] == user:
            h = f[1]
    if not h:
        raise BenchError(f"no shadow entry for {user}")
    times = []
    for _ in range(15):
        t0 = time.monotonic()
        if crypt.crypt(password, h) != h:
            raise BenchError("the bench password does not match its hash")
        times.append(time.monotonic() - t0)
    return statistics.median(times), h.split("$")[1] if h.startswith("$") else "des"


# --------------------------------------------------------------------------
# Servers and spools


def sh(*cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise BenchError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.decode(errors='replace')}")
    return r.stdout.decode(errors="replace")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc, what):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{what} does not listen on port {port}")


def settle(a):
    """Waits (untimed) until the spool was last modified over two seconds
    ago, as a mailbox polled every few minutes is. popa3d sleeps a second
    at login when the mailbox changed within the current second (so that
    its next change moves the mtime), and popper keeps a scan index only
    of a spool unchanged for two seconds (its racy-timestamp rule); every
    run starts from a fresh copy and Dovecot writes its index headers into
    the mbox, so without this each would pay for the others' writes."""
    while True:
        st = os.stat(a.spool)
        # popper compares whole seconds of both mtime and ctime, so a
        # fraction-of-a-second wait past 2.0 s can still fall inside its
        # window: wait until the whole-second stamps are 3 s old.
        age = time.time() - max(int(st.st_mtime), int(st.st_ctime))
        if age > 3.05:
            return
        time.sleep(3.05 - age)


def set_spool(a, src):
    """The user's spool as `src`, owned by the user, group mail, 0600, with
    no lock, journal or temporary file left; written back to disk before
    the run so no write-back of the copy competes with it."""
    for name in os.listdir(a.mail):
        path = os.path.join(a.mail, name)
        if name != a.user:
            os.unlink(path)
    tmp = os.path.join(a.mail, f".{a.user}.bench-copy")
    shutil.copyfile(src, tmp)
    os.chown(tmp, a.uid, a.mail_gid)
    os.chmod(tmp, 0o600)
    os.rename(tmp, a.spool)
    os.sync()


def start_servers(a):
    procs = []
    a.ports = {k: free_port() for k in ("popper", "popa3d", "spawn", "cat", "echo", "dovecot",
                                        "popper-maildir", "dovecot-maildir")}
    inetd_tls = []
    if a.tls:
        inetd_tls = tls_setup(a)
    conf = os.path.join(a.work, "popper.conf")
    with open(conf, "w") as f:
        f.write("# popper as deployed: defaults\n")
    md_conf = os.path.join(a.work, "popper-maildir.conf")
    with open(md_conf, "w") as f:
        f.write("# popper for a qmail site: ~/Maildir, passwords from shadow, defaults otherwise\n"
                "set maildir = Maildir\n")
    inetd_conf = os.path.join(a.work, "inetd.conf")
    with open(inetd_conf, "w") as f:
        p = a.ports
        f.write(f"127.0.0.1:{p['popper']} stream tcp nowait.100000 root {a.popper} popper -f {conf}\n")
        f.write(f"127.0.0.1:{p['popa3d']} stream tcp nowait.100000 root {a.popa3d} popa3d\n")
        f.write(f"127.0.0.1:{p['spawn']} stream tcp nowait.100000 root /usr/bin/printf printf +OK\\r\\n\n")
        f.write(f"127.0.0.1:{p['cat']} stream tcp nowait.100000 root /bin/cat cat {a.large_path}\n")
        f.write(f"127.0.0.1:{p['echo']} stream tcp nowait.100000 root /bin/cat cat\n")
        f.write(f"127.0.0.1:{p['popper-maildir']} stream tcp nowait.100000 root {a.popper} popper -f {md_conf}\n")
        for line in inetd_tls:
            f.write(line + "\n")
    log = open(os.path.join(a.work, "inetd.log"), "wb")
    inetd = subprocess.Popen(["/usr/sbin/inetd", "-d", inetd_conf], stdout=log, stderr=log,
                             stdin=subprocess.DEVNULL, start_new_session=True)
    procs.append(inetd)
    for k in ("popper", "popa3d", "spawn", "cat", "echo", "popper-maildir") + (TLS_INETD if a.tls else ()):
        wait_port(a.ports[k], inetd, "inetd")
    dc = os.path.join(a.work, "dovecot")
    os.makedirs(os.path.join(dc, "run"), exist_ok=True)
    os.makedirs(os.path.join(dc, "state"), exist_ok=True)
    dconf = os.path.join(dc, "dovecot.conf")
    with open(dconf, "w") as f:
        f.write(DOVECOT_CONF.format(dir=dc, port=a.ports["dovecot"]))
    dlog = open(os.path.join(dc, "stderr.log"), "wb")
    dovecot = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", dconf], stdout=dlog, stderr=dlog,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    procs.append(dovecot)
    wait_port(a.ports["dovecot"], dovecot, "dovecot")
    # The Maildir rows' Dovecot: a second instance of its own (own base_dir,
    # instance name and state), the same user database, ~/Maildir.
    dc = os.path.join(a.work, "dovecot-maildir")
    os.makedirs(os.path.join(dc, "run"), exist_ok=True)
    os.makedirs(os.path.join(dc, "state"), exist_ok=True)
    dconf = os.path.join(dc, "dovecot.conf")
    with open(dconf, "w") as f:
        f.write(DOVECOT_MAILDIR_CONF.format(dir=dc, port=a.ports["dovecot-maildir"]))
    dlog = open(os.path.join(dc, "stderr.log"), "wb")
    dovecot = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", dconf], stdout=dlog, stderr=dlog,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    procs.append(dovecot)
    wait_port(a.ports["dovecot-maildir"], dovecot, "dovecot (Maildir)")
    if a.tls:
        # The TLS rows' Dovecot: a third instance, pop3s only, ssl = required.
        dc = os.path.join(a.work, "dovecot-tls")
        os.makedirs(os.path.join(dc, "run"), exist_ok=True)
        os.makedirs(os.path.join(dc, "state"), exist_ok=True)
        dconf = os.path.join(dc, "dovecot.conf")
        with open(dconf, "w") as f:
            f.write(DOVECOT_TLS_CONF.format(dir=dc, port=a.ports["dovecot-tls"],
                                            cert=a.tls_cert, key=a.tls_key))
        dlog = open(os.path.join(dc, "stderr.log"), "wb")
        dovecot = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", dconf], stdout=dlog, stderr=dlog,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        procs.append(dovecot)
        wait_port(a.ports["dovecot-tls"], dovecot, "dovecot (TLS)")
    return procs


# Dovecot as a Debian site would run it for POP3 from mbox spools: its
# defaults, plaintext logins allowed on loopback, passwords from shadow.
DOVECOT_CONF = """\
protocols = pop3
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/state
instance_name = popper-bench
log_path = {dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
passdb {{
  driver = shadow
}}
userdb {{
  driver = passwd
}}
mail_location = mbox:~/mail:INBOX=/var/mail/%u
mail_privileged_group = mail
service pop3-login {{
  inet_listener pop3 {{
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""

# The same for ~/Maildir, the one Maildir popper serves too. Its UIDL is the
# file's base name (`%f`: up to the `:`), which is what qmail-pop3d printed
# and popper prints, so the two list the same UIDs (the bench checks it);
# Dovecot's default (`%08Xu%08Xv`) would be its own IMAP UIDs. Its index
# (dovecot.index*, dovecot-uidlist) is kept in the Maildir, its default.
DOVECOT_MAILDIR_CONF = """\
protocols = pop3
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/state
instance_name = popper-bench-maildir
log_path = {dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
passdb {{
  driver = shadow
}}
userdb {{
  driver = passwd
}}
mail_location = maildir:~/Maildir
pop3_uidl_format = %f
service pop3-login {{
  inet_listener pop3 {{
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""

# --------------------------------------------------------------------------
# The TLS rows (a-tls), (c-tls): implicit TLS, port-995 style

TLS_SERVERS = ["popper", "dovecot"]
TLS_NO_POPA3D = "– (no TLS)"
# The ports the same openbsd-inetd serves for the TLS rows: popper -l 2 and
# the three bench/tls-floor floors.
TLS_INETD = ("popper-tls", "tls-spawn", "tls-cat", "tls-echo")

# Dovecot for the TLS rows: the mbox one, with the pop3s listener only and
# ssl = required, the same certificate and key as popper and the floor.
DOVECOT_TLS_CONF = """\
protocols = pop3
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/state
instance_name = popper-bench-tls
log_path = {dir}/dovecot.log
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain
passdb {{
  driver = shadow
}}
userdb {{
  driver = passwd
}}
mail_location = mbox:~/mail:INBOX=/var/mail/%u
mail_privileged_group = mail
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = {port}
    ssl = yes
  }}
}}
"""


def tls_setup(a):
    """The test certificate (ECDSA P-256, self-signed for localhost, in the
    bench's private directory; the key PKCS#8, root's, 0600, as popper
    requires), popper's -f file, the floors and the client's
    context; returns the inetd lines."""
    d = os.path.join(a.work, "tls")
    os.mkdir(d, 0o700)
    a.tls_key = os.path.join(d, "key.pem")
    a.tls_cert = os.path.join(d, "cert.pem")
    old = os.umask(0o077)
    try:
        sh("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", a.tls_key)
    finally:
        os.umask(old)
    os.chmod(a.tls_key, 0o600)
    sh("openssl", "req", "-x509", "-new", "-key", a.tls_key, "-subj", "/CN=localhost",
       "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "30", "-out", a.tls_cert)
    # The client: TLS 1.3 only, the certificate verified (the same work for
    # every server), no session kept, so every session is a full handshake.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(a.tls_cert)
    a.tls_ctx = ctx
    for k in TLS_INETD + ("dovecot-tls",):
        a.ports[k] = free_port()
    conf = os.path.join(a.work, "popper-tls.conf")
    with open(conf, "w") as f:
        f.write("# popper on port 995 (-l 2): defaults, the bench's certificate\n"
                f"set tls-server-cert-file = {a.tls_cert}\n"
                f"set tls-private-key-file = {a.tls_key}\n")
    lines = [f"127.0.0.1:{a.ports['popper-tls']} stream tcp nowait.100000 root {a.popper} popper -l 2 -f {conf}"]
    # The floors: bench/tls-floor (rustls, popper's provider and settings)
    # per connection from the same inetd, doing nothing else.
    for k, mode in (("tls-spawn", "greet"), ("tls-cat", f"cat {a.medium_path}"), ("tls-echo", "echo")):
        lines.append(f"127.0.0.1:{a.ports[k]} stream tcp nowait.100000 root {a.tls_floor} tls-floor "
                     f"{a.tls_cert} {a.tls_key} {mode}")
    return lines


def tls_probe(a, port, what):
    """What a server negotiates with this client (version, suite), and the
    key exchange group as `openssl s_client` (the same OpenSSL defaults)
    reports it. Untimed."""
    p = Pop(port, a.tls_ctx)
    version, suite = p.s.version(), p.s.cipher()[0]
    p.close()
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_3", "-brief",
                        "-CAfile", a.tls_cert, "-verify_hostname", "localhost"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode(errors="replace")
    group = "?"
    for line in out.splitlines():
        if "Temp Key:" in line:
            group = line.split(":", 1)[1].split(",")[0].strip()
    if "Verification: OK" not in out:
        raise BenchError(f"{what}: openssl s_client does not verify the bench certificate:\n{out}")
    return version, suite, group


def tls_rows(a, res, sizes):
    """(a-tls) and (c-tls); see bench/README.md. The floor is measured in
    every round beside the servers (a third column, interleaved)."""
    port = {"popper": a.ports["popper-tls"], "dovecot": a.ports["dovecot-tls"]}
    seen = {s: tls_probe(a, port[s], s) for s in TLS_SERVERS}
    seen["floor"] = tls_probe(a, a.ports["tls-spawn"], "the TLS floor")
    res["tls_seen"] = seen
    print("TLS negotiated: " + "; ".join(f"{s} {' '.join(v)}" for s, v in seen.items()), flush=True)
    if len(set(seen.values())) != 1:
        raise BenchError(f"the TLS servers negotiate different parameters with the client: {seen}")
    ctx = a.tls_ctx
    both = TLS_SERVERS + ["floor"]

    row = "(a-tls) sessions/s over TLS, small mailbox"
    print(f"{row}: {a.tls_sessions} sessions a run, {a.repeats} runs each ...", flush=True)
    set_spool(a, a.small_path)
    for s in TLS_SERVERS:  # warm-up (Dovecot builds its index)
        sessions(a, port[s], 3, ctx)
    rounds(a, res, both,
           lambda s: (spawn_floor(a.ports["tls-spawn"], a.tls_sessions, ctx) if s == "floor"
                      else sessions(a, port[s], a.tls_sessions, ctx)),
           [row], lambda r: f"{r['rate']:.1f} sessions/s")

    path, meta = sizes["medium"]
    label = a.labels["medium"]
    count = meta["messages"]
    row = f"(c-tls) RETR all pipelined over TLS, {label}: MB/s at the client"
    print(f"{row} ...", flush=True)
    set_spool(a, path)
    for s in TLS_SERVERS:  # warm-up
        download_pipelined(a, port[s], count, ctx)
    rounds(a, res, both,
           lambda s: (cat_floor(a.ports["tls-cat"], meta["bytes"], ctx) if s == "floor"
                      else download_pipelined(a, port[s], count, ctx)),
           [row], lambda r: f"{r['mbps']:.0f} MB/s")

    rows = [f"(c-tls) RETR all over TLS, {label}: MB/s at the client",
            f"(c-tls) RETR all over TLS, {label}: whole session"]
    print(f"{rows[0]} (one at a time, a fresh copy each run) ...", flush=True)
    for rep in range(a.repeats):
        for s in both:
            if s == "floor":
                r = {"rtt": round_trip(a.ports["tls-echo"], 2000, ctx)}
                print(f"  run {rep + 1} floor: round trip {r['rtt'] * 1e6:.0f} µs", flush=True)
            else:
                set_spool(a, path)
                settle(a)
                r = download(a, port[s], count, False, ctx)
                print(f"  run {rep + 1} {s}: {gen.fmt_t(r['time'])}, {r['mbps']:.0f} MB/s", flush=True)
            for k in rows:
                res.setdefault((k, s), []).append(r)
    for key in [k for k in list(res) if isinstance(k, tuple) and k[0].startswith(("(a-tls)", "(c-tls)"))]:
        res[(key[0], "popa3d")] = TLS_NO_POPA3D
    set_spool(a, a.small_path)

# --------------------------------------------------------------------------
# The Maildir rows (m1)-(m4): popper and Dovecot on the same ~/Maildir

# The servers that read a Maildir: popa3d (Debian's build) reads only
# /var/mail mbox spools; qmail-pop3d is not packaged in Debian 12.
MAILDIR_SERVERS = ["popper", "dovecot"]
MAILDIR_NO_POPA3D = "– (mbox only)"
MAILDIR_HOST = "mail.example.com"
# The newest messages, delivered since the last session, are in new/.
NEW_SHARE = 0.05


class MaildirSource:
    """The Maildir's messages, cut from a generated mbox (the same size mix
    as the mbox rows): each message without its `From ` envelope line and
    the empty line that ends it in the mbox, as a delivery agent writes it
    into a Maildir. Named as qmail names deliveries (`TIME.MnPm.host`),
    with the envelope's time as TIME and as the file's mtime; the newest
    NEW_SHARE are in new/, the others in cur/ with `:2,` info, nine in ten
    of them seen (`:2,S`: downloaded before and left on the server)."""

    def __init__(self, path, meta, seed):
        with open(path, "rb") as f:
            self.mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        mm = self.mm
        rng = random.Random(f"maildir {seed}")
        n = meta["messages"]
        first_new = n - max(1, round(n * NEW_SHARE))
        self.msgs = []  # (sub, file name, start, end, mtime in ns), in delivery order
        self.by_uid = {}  # UID (the base name) -> (start, end)
        self.wire = {}  # UID -> the wire size, CRLF, before dot-stuffing
        self.stuffed = {}  # UID -> the dots RETR adds
        off = 0
        for i, ln in enumerate(meta["lens"]):
            eol = mm.find(b"\n", off)
            env = mm[off:eol].decode()
            if not env.startswith("From "):
                raise BenchError(f"message {i + 1} of {path} has no envelope line")
            t = calendar.timegm(time.strptime(env.split(None, 2)[2], "%a %b %d %H:%M:%S %Y"))
            start, end = eol + 1, off + ln - 1
            if mm[end:end + 1] != b"\n" or mm[end - 1:end] != b"\n":
                raise BenchError(f"message {i + 1} of {path} does not end with an empty line")
            while True:
                usec = rng.randrange(1_000_000)
                uid = f"{t}.M{usec}P{rng.randint(300, 32767)}.{MAILDIR_HOST}"
                if uid not in self.by_uid:
                    break
            if i >= first_new:
                sub, name = "new", uid
            else:
                sub, name = "cur", uid + (":2,S" if rng.random() < 0.9 else ":2,")
            body = mm[start:end]
            if b"\r" in body:
                raise BenchError(f"message {i + 1} of {path} has a CR")
            self.msgs.append((sub, name, start, end, t * 1_000_000_000 + usec * 1000))
            self.by_uid[uid] = (start, end)
            self.wire[uid] = len(body) + body.count(b"\n")
            self.stuffed[uid] = body.startswith(b".") + body.count(b"\n.")
            off += ln
        self.count = n
        self.octets = sum(self.wire.values())
        self.file_bytes = sum(e - s for _, _, s, e, _ in self.msgs)
        self.in_new = n - first_new

    def expected(self, uid):
        """What RETR sends of the message between its status line and the
        terminator: CRLF line ends, dot-stuffed."""
        s, e = self.by_uid[uid]
        b = self.mm[s:e].replace(b"\n", b"\r\n")
        if b.startswith(b"."):
            b = b"." + b
        return b.replace(b"\r\n.", b"\r\n..")

    def write(self, root, uid, gid):
        """A fresh Maildir at `root` (any old one removed, with every index
        and cache in it): every message written, owned by the user, 0600,
        dated; the directories the user's, 0700; then synced to disk, so
        no write-back competes with the run."""
        if os.path.lexists(root):
            shutil.rmtree(root)
        dirs = [root] + [os.path.join(root, d) for d in ("cur", "new", "tmp")]
        for d in dirs:
            os.mkdir(d, 0o700)
        view = memoryview(self.mm)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        for sub, name, s, e, ns in self.msgs:
            fd = os.open(os.path.join(root, sub, name), flags, 0o600)
            try:
                mv = view[s:e]
                while mv:
                    mv = mv[os.write(fd, mv):]
                os.fchown(fd, uid, gid)
                os.utime(fd, ns=(ns, ns))
            finally:
                os.close(fd)
        for d in dirs:
            os.chown(d, uid, gid)
            os.chmod(d, 0o700)
        os.sync()


def settle_maildir(a):
    """As settle(), for the Maildir: waits (untimed) until new/ and cur/
    were last changed (mtime and ctime, in whole seconds) more than two
    seconds before the current second. Dovecot's maildir code trusts its
    index only for a directory whose mtime is older than its last look by
    more than a second (else it reads the directory again at every login),
    and popper trusts its listing cache only when it was written from
    directories settled by that rule (the mbox scan index's, stamp.rs), so
    each server's renames would otherwise cost the next one a rescan."""
    for d in ("new", "cur"):
        path = os.path.join(a.maildir, d)
        while True:
            st = os.stat(path)
            ready = int(max(st.st_mtime, st.st_ctime)) + 3
            if time.time() >= ready:
                break
            time.sleep(ready - time.time() + 0.01)


def settle_whole_seconds(a):
    """settle() as popper's scan index needs it: popper keeps an index only
    of a spool whose mtime and ctime, in whole seconds, are more than two
    seconds before the current second (cache.rs, RACY), which 2.1 s after
    a change is not always so."""
    while True:
        st = os.stat(a.spool)
        ready = int(max(st.st_mtime, st.st_ctime)) + 3
        if time.time() >= ready:
            return
        time.sleep(ready - time.time() + 0.01)


def message_files(a):
    return [n for d in ("new", "cur") for n in os.listdir(os.path.join(a.maildir, d))
            if not n.startswith(".")]


def check_listing(src, s, n, octets, uidl):
    """STAT's count and octets, and UIDL (the body of its reply) against
    the generated Maildir: the same count, the exact CRLF sizes, and
    every UID the file's base name. Returns the UIDs by message number."""
    if n != src.count or octets != src.octets:
        raise BenchError(f"{s}: STAT says {n} messages ({octets} octets), the Maildir has "
                         f"{src.count} ({src.octets} octets as CRLF)")
    lines = uidl.split(b"\r\n")
    if lines[-2:] != [b".", b""]:
        raise BenchError(f"{s}: UIDL does not end with its terminator")
    uids = []
    for k, line in enumerate(lines[:-2], 1):
        num, _, uid = line.decode(errors="replace").partition(" ")
        if num != str(k):
            raise BenchError(f"{s}: UIDL line {k} is {line[:80]!r}")
        uids.append(uid)
    if len(uids) != src.count or set(uids) != set(src.wire):
        unknown = sorted(set(uids) - set(src.wire))[:3]
        raise BenchError(f"{s}: UIDL lists {len(uids)} UIDs ({len(set(uids))} distinct), want the "
                         f"{src.count} base names; not base names: {unknown}")
    return uids


def md_check(a, s, src):
    """(m1): login + STAT + UIDL + QUIT on the Maildir, timed from the
    connect to the server's close; the listing checked afterwards."""
    port = a.ports[f"{s}-maildir"]
    t0 = time.monotonic()
    p = login(a, port)
    mem = Memory(port, p.local_port)
    n, octets = stat(p)
    _, _, body = p.multi("UIDL", keep=True)
    quit(p)
    t = time.monotonic() - t0
    mem.stop()
    check_listing(src, s, n, octets, body)
    return {"time": t, "rss": mem.mailbox, "rss_all": mem.overall}


def md_stat(a, s, src):
    """An untimed session (login + STAT + QUIT) that lets the server build
    its index or size cache."""
    p = login(a, a.ports[f"{s}-maildir"])
    n, octets = stat(p)
    quit(p)
    if n != src.count or octets != src.octets:
        raise BenchError(f"{s}: STAT says {n} messages ({octets} octets), want {src.count} ({src.octets})")


def md_verify(a, s, src):
    """Untimed, once per server: UIDL and LIST against the generated
    files, then every message by pipelined RETR, each received body
    compared byte for byte with the file (CRLF, dot-stuffed). Returns the
    bytes a pipelined RETR of everything receives, which every timed run
    must receive exactly."""
    p = login(a, a.ports[f"{s}-maildir"])
    n, octets = stat(p)
    _, _, uidl = p.multi("UIDL", keep=True)
    uids = check_listing(src, s, n, octets, uidl)
    _, _, listing = p.multi("LIST", keep=True)
    sizes = [int(x.split()[1]) for x in listing.split(b"\r\n")[:-2]]
    bad = [k for k, (uid, size) in enumerate(zip(uids, sizes), 1) if size != src.wire[uid]]
    if len(sizes) != n or bad:
        raise BenchError(f"{s}: LIST gives {len(sizes)} sizes; wrong for messages {bad[:5]}")
    commands = b"".join(b"RETR %d\r\n" % i for i in range(1, n + 1))
    sender = threading.Thread(target=p.s.sendall, args=(commands,), daemon=True)
    sender.start()
    buf = bytearray(p.pending)
    p.pending = b""
    got = len(buf)
    k = 0
    while True:
        pos = 0
        while k < n:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            end = buf.find(b"\r\n.\r\n", eol)
            if end < 0:
                break
            if not buf.startswith(b"+OK", pos):
                raise BenchError(f"{s}: RETR {k + 1}: {bytes(buf[pos:eol])!r}")
            body = buf[eol + 2:end + 2]
            if len(body) - src.stuffed[uids[k]] != sizes[k] or body != src.expected(uids[k]):
                raise BenchError(f"{s}: RETR {k + 1} sent {len(body)} bytes that are not the file "
                                 f"{uids[k]} ({sizes[k]} octets by LIST)")
            pos = end + 5
            k += 1
        del buf[:pos]
        if k == n:
            break
        chunk = p.s.recv(4 << 20)
        if not chunk:
            raise BenchError(f"{s}: the server closed the connection during RETR")
        got += len(chunk)
        buf += chunk
    sender.join()
    if buf:
        raise BenchError(f"{s}: {len(buf)} bytes after the last RETR reply")
    quit(p)
    return got


def md_retr_pipelined(a, s, src, want_bytes):
    """(m2): every RETR at once (download_pipelined), its total checked
    against md_verify's byte for byte run."""
    r = download_pipelined(a, a.ports[f"{s}-maildir"], src.count)
    if r["bytes"] != want_bytes:
        raise BenchError(f"{s}: pipelined RETR received {r['bytes']} bytes, the verified run {want_bytes}")
    return r


def md_dele(a, s, src):
    """(m3): login + STAT, DELE of every message (pipelined, every reply
    read and checked), QUIT; timed from the connect to the server's close
    after its sign-off, with the QUIT (the update: every file unlinked)
    also on its own. Afterwards no message may be left."""
    port = a.ports[f"{s}-maildir"]
    t0 = time.monotonic()
    p = login(a, port)
    mem = Memory(port, p.local_port)
    n, octets = stat(p)
    if n != src.count or octets != src.octets:
        raise BenchError(f"{s}: STAT says {n} messages ({octets} octets), want {src.count} ({src.octets})")
    commands = b"".join(b"DELE %d\r\n" % i for i in range(1, n + 1))
    sender = threading.Thread(target=p.s.sendall, args=(commands,), daemon=True)
    sender.start()
    replies = bytearray(p.pending)
    p.pending = b""
    lines = replies.count(b"\r\n")
    while lines < n:
        chunk = p.s.recv(1 << 20)
        if not chunk:
            raise BenchError(f"{s}: the server closed the connection during DELE")
        lines += chunk.count(b"\r\n") + (replies[-1:] == b"\r" and chunk[:1] == b"\n")
        replies += chunk
    t2 = time.monotonic()
    sender.join()
    got = bytes(replies).split(b"\r\n")
    if len(got) != n + 1 or got[-1] or not all(x.startswith(b"+OK") for x in got[:-1]):
        bad = next((x for x in got[:-1] if not x.startswith(b"+OK")), got[-1])
        raise BenchError(f"{s}: DELE: {len(got) - 1} replies for {n} commands; {bad[:80]!r}")
    quit(p)
    t3 = time.monotonic()
    mem.stop()
    left = message_files(a)
    if left:
        raise BenchError(f"{s}: {len(left)} messages left after DELE of all and QUIT, e.g. {left[0]}")
    return {"time": t3 - t0, "quit": t3 - t2, "rss": mem.mailbox, "rss_all": mem.overall}


def popper_cache(a):
    """(inode, mtime) of popper's size cache, None if there is none."""
    try:
        st = os.stat(os.path.join(a.maildir, ".popper-sizes"))
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def maildir_rows(a, res, src, mbox_path):
    """(m1)-(m4). See bench/README.md."""
    label = a.labels["maildir"]
    servers = MAILDIR_SERVERS
    fresh = lambda: src.write(a.maildir, a.uid, a.gid)  # noqa: E731
    show_time = lambda r: f"{gen.fmt_t(r['time'])}, RSS {r['rss'] / 1e6:.1f} MB"  # noqa: E731

    def prep():
        # Two untimed sessions each, the second after the first ones'
        # renames have settled: each server's index or cache is built and
        # current (Dovecot's first session moves new/ to cur/).
        for _ in range(2):
            settle_maildir(a)
            for s in servers:
                md_stat(a, s, src)
        settle_maildir(a)

    def rounds_md(measure, rows, show, before=None):
        for rep in range(a.repeats):
            for s in servers:
                if before:
                    before()
                settle_maildir(a)
                r = measure(s)
                for row in rows:
                    res.setdefault((row, s), []).append(r)
                print(f"  run {rep + 1} {s}: {show(r)}", flush=True)

    # (m4), the mbox side: popper (and the others) on the same messages as
    # an mbox spool, the (b) check, warm as (m1) warm is: popper's scan
    # index in place and used (checked), Dovecot's index current.
    print(f"(m4) check of the same messages as an mbox, {label} ...", flush=True)
    set_spool(a, mbox_path)
    index = os.path.join(a.mail, f".{a.user}.pop.index")
    indexed = os.path.getsize(a.spool) >= 1 << 20  # popper scans smaller spools every time
    # Warm-up rounds until one leaves the spool and popper's index alone
    # (Dovecot writes its headers into the spool in its first sessions).
    for _ in range(6):
        st = os.stat(a.spool)
        stamp = (st.st_size, st.st_mtime_ns, os.stat(index).st_mtime_ns if os.path.exists(index) else None)
        for s in SERVERS:
            settle_whole_seconds(a)
            check(a, a.ports[s], src.count)
        st = os.stat(a.spool)
        if stamp == (st.st_size, st.st_mtime_ns,
                     os.stat(index).st_mtime_ns if os.path.exists(index) else None) \
                and (stamp[2] or not indexed):
            break
    else:
        raise BenchError("the mbox spool or popper's scan index still changes after six warm-up rounds")
    mbox_row = f"(m4) peak RSS after login, check of the same messages as an mbox, {label}"
    for rep in range(a.repeats):
        for s in SERVERS:
            settle_whole_seconds(a)
            before = os.stat(index).st_mtime_ns if os.path.exists(index) else None
            r = check(a, a.ports[s], src.count)
            if s == "popper" and indexed and (before is None or os.stat(index).st_mtime_ns != before):
                raise BenchError("popper did not use its scan index in the warm mbox check")
            res.setdefault((mbox_row, s), []).append(r)
            print(f"  run {rep + 1} {s}: {gen.fmt_t(r['time'])}, RSS {r['rss'] / 1e6:.1f} MB", flush=True)
    set_spool(a, a.small_path)  # the disk space back

    print(f"(m1) first login: check of a fresh Maildir, {label} ...", flush=True)

    def cold(s):
        if popper_cache(a) is not None:
            raise BenchError("a fresh Maildir has a size cache")
        r = md_check(a, s, src)
        if s == "popper" and popper_cache(a) is None:
            raise BenchError("popper's first login wrote no size cache")
        # What the session left in new/ (Dovecot's moves its files to cur/).
        r["new_left"] = len(os.listdir(os.path.join(a.maildir, "new")))
        return r

    rounds_md(cold, [f"(m1) check, Maildir {label}: first login (no index)",
                     f"(m4) peak RSS after login, (m1) first-login check, Maildir {label}"],
              lambda r: f"{show_time(r)}, new/ {src.in_new} → {r['new_left']}", before=fresh)

    print(f"(m1) warm: check with the size cache and index in place, {label} ...", flush=True)
    fresh()
    prep()

    def warm(s):
        before = popper_cache(a)
        if before is None:
            raise BenchError("no size cache for the warm check")
        r = md_check(a, s, src)
        if popper_cache(a) != before:
            raise BenchError(f"popper's size cache was rewritten in a warm check ({s}'s run)")
        return r

    rounds_md(warm, [f"(m1) check, Maildir {label}: warm (size cache / index present)",
                     f"(m4) peak RSS after login, (m1) warm check, Maildir {label}",
                     f"(m4) peak RSS of the whole process, (m1) warm check, Maildir {label}"],
              show_time)

    print(f"(m2) every message checked byte for byte, then RETR all pipelined, {label} ...", flush=True)
    want = {}
    for s in servers:
        settle_maildir(a)
        want[s] = md_verify(a, s, src)
        print(f"  {s}: {src.count} messages as in the files, {want[s]} bytes", flush=True)
    prep()
    rounds_md(lambda s: md_retr_pipelined(a, s, src, want[s]),
              [f"(m2) RETR all pipelined, Maildir {label}: MB/s at the client"],
              lambda r: f"{r['mbps']:.0f} MB/s")

    print(f"(m3) DELE all + QUIT, a fresh Maildir each run, {label} ...", flush=True)

    def fresh_prepped():
        fresh()
        prep()

    rounds_md(lambda s: md_dele(a, s, src),
              [f"(m3) DELE all, Maildir {label}: whole session",
               f"(m3) DELE all, Maildir {label}: QUIT",
               f"(m4) peak RSS after login, (m3) DELE all, Maildir {label}"],
              lambda r: f"{gen.fmt_t(r['time'])}, QUIT {gen.fmt_t(r['quit'])}, RSS {r['rss'] / 1e6:.1f} MB",
              before=fresh_prepped)
    shutil.rmtree(a.maildir)
    for key in [k for k in list(res) if isinstance(k, tuple) and k[0].startswith("(m")
                and "as an mbox" not in k[0]]:
        res[(key[0], "popa3d")] = MAILDIR_NO_POPA3D


# --------------------------------------------------------------------------
# The table


def med(v):
    return statistics.median(v), min(v), max(v)


def fmt_rate(m):
    return f"{m[0]:.1f}/s ({m[1]:.1f}–{m[2]:.1f})"


def fmt_mbps(m):
    return f"{m[0]:.0f} MB/s ({m[1]:.0f}–{m[2]:.0f})"


def fmt_time(m):
    return f"{gen.fmt_t(m[0])} ({gen.fmt_t(m[1])}–{gen.fmt_t(m[2])})"


def fmt_rss(m):
    return f"{m[0] / 1e6:.1f} MB"


def table(a, res):
    """One row per measured quantity; a column per server; ratios to
    popper (>1: popper is better) and to the floor."""
    lines = []
    head = ("| scenario | " + " | ".join(SERVERS)
            + " | best peer / popper | qpopper 2.53's copies | copies / popper | floor | popper / floor |")
    lines.append(head)
    lines.append("|" + "---|" * (len(SERVERS) + 6))

    def row(name, key, fmt, higher_better, floor=None, floor_fmt=None, q_from=None):
        cells = []
        meds = {}
        for s in SERVERS:
            r = res.get((name, s))
            if r is None:
                cells.append("–")
                continue
            if isinstance(r, str):
                cells.append(r)
                continue
            m = med([x[key] for x in r])
            meds[s] = m[0]
            cells.append(fmt(m))
        peers = [v for s, v in meds.items() if s != "popper"]
        if "popper" in meds and peers and meds["popper"] > 0:
            best = max(peers) if higher_better else min(peers)
            rt = (meds["popper"] / best) if higher_better else (best / meds["popper"])
            ratio = f"{rt:.2f}×"
        else:
            ratio = "–"
        q = res.get((q_from[0] if q_from else name, "qpopper"))
        if q and "popper" in meds and meds["popper"] > 0:
            qm = med([x[key] for x in q])
            if q_from:
                # popper's own session with qpopper's copies in place of
                # popper's update: its time less its QUIT, plus the copies.
                shift = q_from[1](meds["popper"])
                qm = tuple(v + shift for v in qm)
            q_cell, q_ratio = fmt(qm), f"{qm[0] / meds['popper']:.2f}×"
        else:
            q_cell, q_ratio = "–", "–"
        if floor is not None and "popper" in meds:
            f = floor
            fr = meds["popper"] / f if higher_better else f / meds["popper"]
            floor_cell, floor_ratio = floor_fmt(f), f"{fr:.0%}"
        else:
            floor_cell, floor_ratio = "–", "–"
        lines.append(f"| {name} | " + " | ".join(cells)
                     + f" | {ratio} | {q_cell} | {q_ratio} | {floor_cell} | {floor_ratio} |")

    fl = res["floors"]
    hash_t = res["hash"][0]
    per_floor = 1 / fl["spawn"] + hash_t
    if a.rows == "all":
        row("(a) sessions/s, small mailbox", "rate", fmt_rate, True,
            1 / per_floor, lambda f: f"{f:.1f}/s (spawn + hash)")
    for size in ("medium", "large") if a.rows == "all" else ():
        label = a.labels[size]
        row(f"(b) check, {label}: login+STAT+UIDL+QUIT", "time", fmt_time, False,
            None)
        # One RETR at a time cannot beat a round trip per message plus
        # streaming the bytes: that is its floor. Pipelined, only `cat`.
        count, nbytes = a.meta[size]["messages"], a.meta[size]["bytes"]
        rr_floor = nbytes / (count * fl["rtt"] + nbytes / (fl["cat"] * 1e6)) / 1e6
        row(f"(c) RETR all, {label}: MB/s at the client", "mbps", fmt_mbps, True,
            rr_floor, lambda f: f"{f:.0f} MB/s (round trips + cat)")
        row(f"(c) RETR all pipelined, {label}: MB/s at the client", "mbps", fmt_mbps, True,
            fl["cat"], lambda f: f"{f:.0f} MB/s (cat)")
        row(f"(c) RETR all, {label}: whole session", "time", fmt_time, False)
        d_name = f"(d) RETR+DELE all, {label}: whole session"
        d_quit = med([x["quit"] for x in res.get((d_name, "popper"), [])] or [0])[0]
        row(d_name, "time", fmt_time, False, q_from=(d_name + " copies", lambda t: t - d_quit))
        row(f"(d) RETR+DELE all, {label}: QUIT", "quit", fmt_time, False,
            q_from=(d_name + " copies", lambda t: 0))
        for sc in ("b", "c", "d"):
            row(f"(e) peak RSS after login, ({sc}) {label}", "rss", fmt_rss, False)
        row(f"(e) peak RSS of the whole process, (b) {label}", "rss_all", fmt_rss, False)
    for size in ("grow", "large", "many") if a.rows in ("all", "growing") else ():
        if size not in a.labels:
            continue
        label = a.labels[size]
        row(f"(f) first login, {label}: login+STAT+UIDL+QUIT", "time", fmt_time, False)
        row(f"(g) check after one new delivery, {label}: login+STAT+UIDL+QUIT", "time", fmt_time, False)
        row(f"(e) peak RSS after login, (f) {label}", "rss", fmt_rss, False)
        if size == "many":
            row(f"(b) check, {label}: login+STAT+UIDL+QUIT", "time", fmt_time, False)
            row(f"(e) peak RSS after login, (b) {label}", "rss", fmt_rss, False)
    if "tls_seen" in res:
        def floor_med(name, key):
            return statistics.median(x[key] for x in res[(name, "floor")])

        name = "(a-tls) sessions/s over TLS, small mailbox"
        row(name, "rate", fmt_rate, True, 1 / (1 / floor_med(name, "rate") + hash_t),
            lambda f: f"{f:.1f}/s (TLS spawn + hash)")
        label = a.labels["medium"]
        count, nbytes = a.meta["medium"]["messages"], a.meta["medium"]["bytes"]
        name = f"(c-tls) RETR all pipelined over TLS, {label}: MB/s at the client"
        tls_cat = floor_med(name, "mbps")
        row(name, "mbps", fmt_mbps, True, tls_cat, lambda f: f"{f:.0f} MB/s (TLS cat)")
        name = f"(c-tls) RETR all over TLS, {label}: MB/s at the client"
        tls_rtt = floor_med(name, "rtt")
        row(name, "mbps", fmt_mbps, True, nbytes / (count * tls_rtt + nbytes / (tls_cat * 1e6)) / 1e6,
            lambda f: f"{f:.0f} MB/s (TLS round trips + cat)")
        row(f"(c-tls) RETR all over TLS, {label}: whole session", "time", fmt_time, False)
    if "maildir" in a.labels:
        label = a.labels["maildir"]
        row(f"(m1) check, Maildir {label}: first login (no index)", "time", fmt_time, False)
        row(f"(m1) check, Maildir {label}: warm (size cache / index present)", "time", fmt_time, False)
        row(f"(m2) RETR all pipelined, Maildir {label}: MB/s at the client", "mbps", fmt_mbps, True,
            fl["cat"], lambda f: f"{f:.0f} MB/s (cat of the large mbox)")
        row(f"(m3) DELE all, Maildir {label}: whole session", "time", fmt_time, False)
        row(f"(m3) DELE all, Maildir {label}: QUIT", "quit", fmt_time, False)
        # The memory target: no more than popper's mbox path needs for the
        # same messages (its figure in the floor column).
        mbox_row = f"(m4) peak RSS after login, check of the same messages as an mbox, {label}"
        target = res.get((mbox_row, "popper"))
        target = med([x["rss"] for x in target])[0] if isinstance(target, list) else None
        for sc in ("(m1) warm check", "(m1) first-login check", "(m3) DELE all"):
            row(f"(m4) peak RSS after login, {sc}, Maildir {label}", "rss", fmt_rss, False,
                target, lambda f: f"{f / 1e6:.1f} MB (popper, the mbox)")
        row(mbox_row, "rss", fmt_rss, False)
        row(f"(m4) peak RSS of the whole process, (m1) warm check, Maildir {label}", "rss_all", fmt_rss, False)
    return "\n".join(lines)


# --------------------------------------------------------------------------


def deliver_one(a, i):
    """Appends one new message to the spool, as a delivery agent does."""
    msg = (f"From bench@example.org {time.strftime('%a %b %d %H:%M:%S %Y')}\n"
           f"Received: from relay.example.org by mx.example.org; {i}\n"
           f"Message-Id: <new-{i}-{time.time_ns()}@example.org>\n"
           f"Subject: new mail {i}\n\nnew mail {i}\n\n").encode()
    with open(a.spool, "ab") as f:
        f.write(msg)


def forget(a):
    """Every server's index of the spool removed: popper's scan index and
    Dovecot's mbox index (mail_location mbox:~/mail: ~/mail/.imap)."""
    for name in os.listdir(a.mail):
        if name.startswith(f".{a.user}.pop.index"):
            os.unlink(os.path.join(a.mail, name))
    shutil.rmtree(os.path.join(a.home, "mail", ".imap"), ignore_errors=True)


def growing_rows(a, res, sizes, port):
    """(f) the first login on a spool no server has seen (its indexes
    removed, a fresh copy: a new inode); (g) a check right after one new
    delivery to a spool each server has indexed (per run: a fresh copy, an
    untimed check so the server's index is current, one message appended,
    the spool left to settle as a polled mailbox is, then the timed
    check); and both, with (b) and (e), on a mailbox of many small
    messages."""
    names = [k for k in ("grow", "large", "many") if k in sizes]
    for size in names:
        path, meta = sizes[size]
        label = a.labels[size]
        count = meta["messages"]
        set_spool(a, path)
        servers = [s for s in SERVERS if not refusal(a, port[s])]
        for s in SERVERS:
            if s not in servers:
                for r in (f"(f) first login, {label}: login+STAT+UIDL+QUIT",
                          f"(g) check after one new delivery, {label}: login+STAT+UIDL+QUIT"):
                    res[(r, s)] = "refused the mailbox"
        print(f"(f) first login, {label} ...", flush=True)

        def fresh():
            set_spool(a, path)
            forget(a)

        rounds(a, res, servers, lambda s: check(a, port[s], count),
               [f"(f) first login, {label}: login+STAT+UIDL+QUIT",
                f"(e) peak RSS after login, (f) {label}"],
               lambda r: f"{gen.fmt_t(r['time'])}, RSS {r['rss'] / 1e6:.1f} MB", fresh=fresh)
        print(f"(g) check after one new delivery, {label} ...", flush=True)
        n = [0]

        def after_delivery(s):
            check(a, port[s], count)
            n[0] += 1
            deliver_one(a, n[0])
            settle(a)
            return check(a, port[s], count + 1)

        rounds(a, res, servers, after_delivery,
               [f"(g) check after one new delivery, {label}: login+STAT+UIDL+QUIT"],
               lambda r: f"{gen.fmt_t(r['time'])}", fresh=fresh)
        if size == "many":
            print(f"(b) leave-on-server check, {label} ...", flush=True)
            set_spool(a, path)
            settle(a)
            for s in servers:
                check(a, port[s], count)
            rounds(a, res, servers, lambda s: check(a, port[s], count),
                   [f"(b) check, {label}: login+STAT+UIDL+QUIT",
                    f"(e) peak RSS after login, (b) {label}"],
                   lambda r: f"{gen.fmt_t(r['time'])}, RSS {r['rss'] / 1e6:.1f} MB")


def rounds(a, res, servers, measure, rows, show, fresh=None, after=None):
    """The timed runs of one scenario: `a.repeats` rounds, the servers in
    turn within each (interleaved). Before each run, untimed: `fresh()`
    (a fresh copy of the mailbox) if given, then settle(a); `measure(s)`
    runs it; the result is kept under each of `rows` and printed with
    `show(r)`. `after(rep)` ends a round (the qpopper copies baseline)."""
    for rep in range(a.repeats):
        for s in servers:
            if fresh:
                fresh()
            settle(a)
            r = measure(s)
            for row in rows:
                res.setdefault((row, s), []).append(r)
            print(f"  run {rep + 1} {s}: {show(r)}", flush=True)
        if after:
            after(rep)


def run(a):
    started = time.monotonic()
    import grp
    import pwd

    pw = pwd.getpwnam(a.user)
    a.uid, a.gid, a.home = pw.pw_uid, pw.pw_gid, pw.pw_dir
    a.mail_gid = grp.getgrnam("mail").gr_gid
    a.mail = os.path.join(a.work, "mail")
    a.spool = os.path.join(a.mail, a.user)
    os.makedirs(a.mail, exist_ok=True)
    os.chown(a.mail, 0, a.mail_gid)
    os.chmod(a.mail, 0o2775)
    home = os.path.join(a.work, "home")
    os.makedirs(home, exist_ok=True)
    os.chown(home, a.uid, a.gid)
    for src, dst in ((a.mail, "/var/mail"), (home, a.home)):
        sh("mount", "--bind", src, dst)
    sh("mount", "-t", "tmpfs", "tmpfs", "/run")

    sizes = {}
    specs = [("small", a.small), ("medium", a.medium), ("large", a.large)]
    if a.rows in ("all", "growing"):
        specs.append(("grow", a.grow))
        if a.many != "0":
            specs.append(("many", a.many))
    for name, spec in specs:
        n, mb = (int(x) for x in spec.split(","))
        path = os.path.join(a.work, f"{name}.mbox")
        print(f"generating the {name} mailbox: {n} messages, ~{mb} MB ...", flush=True)
        meta = gen.generate(path, n, mb * 1_000_000, a.seed, a.user, False)
        sizes[name] = (path, meta)
    a.small_count = sizes["small"][1]["messages"]
    a.small_path = sizes["small"][0]
    a.meta = {k: sizes[k][1] for k in sizes}
    a.large_path = sizes["large"][0]
    a.medium_path = sizes["medium"][0]
    a.labels = {
        k: f"{sizes[k][1]['messages']} msgs / {sizes[k][1]['bytes'] / 1e6:.0f} MB" for k in sizes
    }
    src = None
    if a.maildir_spec != "0" and a.rows != "growing":
        n, mb = (int(x) for x in a.maildir_spec.split(","))
        if (n, mb) == tuple(int(x) for x in a.large.split(",")):
            mbox_path, meta = sizes["large"]  # the same messages as the large mailbox
        else:
            mbox_path = os.path.join(a.work, "maildir.mbox")
            print(f"generating the Maildir's messages: {n} messages, ~{mb} MB ...", flush=True)
            meta = gen.generate(mbox_path, n, mb * 1_000_000, a.seed, a.user, False)
        print("cutting them into Maildir files ...", flush=True)
        src = MaildirSource(mbox_path, meta, a.seed)
        a.maildir = os.path.join(home, "Maildir")
        a.labels["maildir"] = f"{src.count} msgs / {src.file_bytes / 1e6:.0f} MB"
        a.maildir_mbox_label = f"{meta['bytes'] / 1e6:.0f} MB"
    procs = start_servers(a)
    res = {}
    try:
        print("floors and the password hash ...", flush=True)
        res["hash"] = hash_cost(a.password, a.user)
        spawn = [spawn_floor(a.ports["spawn"], a.sessions)["rate"] for _ in range(a.repeats)]
        cat = [cat_floor(a.ports["cat"], sizes["large"][1]["bytes"])["mbps"] for _ in range(a.repeats)]
        rtt = [round_trip(a.ports["echo"]) for _ in range(a.repeats)]
        res["floors"] = {"spawn": statistics.median(spawn), "cat": statistics.median(cat),
                         "rtt": statistics.median(rtt), "spawn_all": spawn, "cat_all": cat}
        port = {s: a.ports[s] for s in SERVERS}

        set_spool(a, sizes["small"][0])
        if a.rows == "all":
            print(f"(a) {a.sessions} sessions on the small mailbox, {a.repeats} runs each ...", flush=True)
            for s in SERVERS:  # warm-up (Dovecot builds its index)
                sessions(a, port[s], 3)
            rounds(a, res, SERVERS, lambda s: sessions(a, port[s], a.sessions),
                   ["(a) sessions/s, small mailbox"], lambda r: f"{r['rate']:.1f} sessions/s")

        for size in ("medium", "large") if a.rows == "all" else ():
            path, meta = sizes[size]
            label = a.labels[size]
            count = meta["messages"]
            # (b): the spool is left as it is between runs (a check changes
            # nothing), after one warm-up session each.
            print(f"(b) leave-on-server check, {label} ...", flush=True)
            set_spool(a, path)
            settle(a)
            refused = {}
            for s in SERVERS:
                why = refusal(a, port[s])
                if why:
                    refused[s] = f"refused: {why}"
                    print(f"  {s} refuses the mailbox: {why}", flush=True)
            servers = [s for s in SERVERS if s not in refused]
            one_at_a_time = [s for s in servers if not (s == "popa3d" and count > POPA3D_MAX_RETR)]
            not_run = {}
            for s in servers:
                if s not in one_at_a_time:
                    per = [x["time"] / a.meta["medium"]["messages"]
                           for x in res.get((f"(c) RETR all, {a.labels['medium']}: whole session", s), [])]
                    est = f", ~{count * statistics.median(per) / 60:.0f} min a run" if per else ""
                    not_run[s] = (f"not run: ~40 ms a RETR (delayed ACK){est}; see the medium rows")
            for s in servers:
                check(a, port[s], count)
            def copies(rep, key, keep):
                q = qpopper_copies(a, path, keep=keep)
                q["quit"] = q["time"]
                res.setdefault((key, "qpopper"), []).append(q)
                print(f"  run {rep + 1} qpopper's copies: {gen.fmt_t(q['time'])}", flush=True)

            b_row = f"(b) check, {label}: login+STAT+UIDL+QUIT"
            rounds(a, res, servers, lambda s: check(a, port[s], count),
                   [b_row, f"(e) peak RSS after login, (b) {label}",
                    f"(e) peak RSS of the whole process, (b) {label}"],
                   lambda r: f"{gen.fmt_t(r['time'])}, RSS {r['rss'] / 1e6:.1f} MB",
                   after=lambda rep: copies(rep, b_row, keep=True))
            print(f"(c) RETR all pipelined, {label} ...", flush=True)
            set_spool(a, path)
            for s in servers:  # warm-up
                download_pipelined(a, port[s], count)
            rounds(a, res, servers, lambda s: download_pipelined(a, port[s], count),
                   [f"(c) RETR all pipelined, {label}: MB/s at the client"],
                   lambda r: f"{r['mbps']:.0f} MB/s")

            def download_all(s, delete):
                r = download(a, port[s], count, delete)
                if delete and os.path.getsize(a.spool) > 4096:
                    raise BenchError(f"{s}: after deleting everything the spool has {os.path.getsize(a.spool)} bytes")
                return r

            d_row = f"(d) RETR+DELE all, {label}: whole session"
            for which, delete, rows in (
                ("c", False, [f"(c) RETR all, {label}: MB/s at the client", f"(c) RETR all, {label}: whole session"]),
                ("d", True, [d_row, f"(d) RETR+DELE all, {label}: QUIT"]),
            ):
                print(f"({which}) {'RETR+DELE' if delete else 'RETR'} all, {label} ...", flush=True)
                rounds(a, res, one_at_a_time, lambda s, delete=delete: download_all(s, delete),
                       rows + [f"(e) peak RSS after login, ({which}) {label}"],
                       lambda r: (f"{gen.fmt_t(r['time'])}, {r['mbps']:.0f} MB/s, "
                                  f"QUIT {gen.fmt_t(r['quit'])}, RSS {r['rss'] / 1e6:.1f} MB"),
                       fresh=lambda: set_spool(a, path),
                       after=(lambda rep: copies(rep, d_row + " copies", keep=False)) if delete else None)
            for key in [k for k in list(res) if isinstance(k, tuple) and label in k[0]]:
                for s, why in refused.items():
                    res[(key[0], s)] = why
                if key[0].startswith(("(c) RETR all,", "(d) ", "(e) peak RSS after login, (c)",
                                      "(e) peak RSS after login, (d)")):
                    for s, why in not_run.items():
                        res[(key[0], s)] = why
        if a.rows in ("all", "growing"):
            growing_rows(a, res, sizes, port)
        if a.tls and a.rows == "all":
            tls_rows(a, res, sizes)
        if src is not None and a.rows != "growing":
            maildir_rows(a, res, src, mbox_path)
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            p.wait()

    text = table(a, res)
    m = gen.machine()
    hash_t, method = res["hash"]
    fl = res["floors"]
    versions = {
        "popa3d": sh("dpkg-deb", "-f", a.popa3d_deb, "Version").strip() if a.popa3d_deb else "?",
        "dovecot": sh("/usr/sbin/dovecot", "--version").strip(),
    }
    out = [
        "# popper against popa3d and Dovecot (make bench)",
        "",
        "Generated by `bench/peers.sh`; see `bench/README.md` for what each row means.",
        "These figures come from one run on one machine: compare them only with each other.",
        "",
        f"* date: {m['date']}; popper commit {m['commit']}",
        f"* machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM, kernel {m['kernel']}",
        f"* peers: popa3d {versions['popa3d']} (Debian, from the same openbsd-inetd as popper), "
        f"Dovecot {versions['dovecot']} (Debian, its own pop3 service, mbox INBOX=/var/mail/%u)",
        f"* mailboxes (seed {a.seed}): small {a.labels['small']}, medium {a.labels['medium']}, large {a.labels['large']}",
        f"* {a.repeats} runs of each row, servers interleaved; (a) is {a.sessions} sessions a run",
        f"* floors: inetd spawning `printf` {statistics.median(fl['spawn_all']):.0f} sessions/s; "
        f"`cat` of the large mailbox through inetd {statistics.median(fl['cat_all']):.0f} MB/s; "
        f"one request-response round trip through inetd (`cat` echoing) {fl['rtt'] * 1e6:.0f} µs; "
        f"the password hash ({method}) {gen.fmt_t(hash_t)} per login",
        "* ratio column: the best peer's figure against popper's, so above 1.00× popper is ahead",
        "* qpopper 2.53's copies (its spool work alone, bench/update.py's baseline: spool → temporary drop,"
        " emptied, kept mail copied back, fsync): (b) the copies alone, a lower bound for a qpopper check;"
        " (d) QUIT row: the copies alone against popper's whole update; (d) whole session: popper's session"
        " with the copies in place of its QUIT",
        "* before each timed run the bench waits (untimed) until the spool is over two seconds old:"
        " popa3d sleeps a second at login after a change within the same second, and popper keeps its scan"
        " index only of a spool unchanged for two seconds",
        "* (b) leaves the spool alone between runs (Dovecot's index stays valid, as for a client that checks often);"
        " (c) and (d) start each run from a fresh copy of the mailbox",
        "* RSS after login: the high-water mark reset after PASS (clear_refs), then sampled every 2 ms;"
        " whole process: the high-water mark at login, which for popper and popa3d includes the password hash"
        " (Dovecot hashes in its separate auth process)",
    ]
    if "maildir" in a.labels:
        out += [
            f"* Maildir rows (m1)-(m4): popper (`set maildir = Maildir`, from the same openbsd-inetd) and Dovecot"
            f" (a second instance, `mail_location = maildir:~/Maildir`, `pop3_uidl_format = %f`) on the same"
            f" ~/Maildir of {a.labels['maildir']} (the messages of the {a.maildir_mbox_label} mbox, seed {a.seed},"
            f" qmail-named, {NEW_SHARE:.0%} in new/); popa3d reads mbox only, qmail-pop3d is not packaged in Debian 12",
            "* Maildir: (m1) first login starts from a freshly written Maildir (no index, no listing cache);"
            " (m3) from a freshly written one too, and like (m1) warm and (m2) after two untimed sessions of each"
            " server (index and cache built and current);"
            " before each timed run the bench waits until new/ and cur/ last changed over two whole seconds before"
            " (Dovecot's dirty-sync rule, and popper's for taking its listing cache whole);"
            " every UIDL checked against the file names, every size against the files, every message byte for byte once",
            "* (m4) floor column: popper's own figure on the mbox of the same messages, the Maildir path's memory target",
        ]
    if "tls_seen" in res:
        seen = res["tls_seen"]
        tls_pipe = f"(c-tls) RETR all pipelined over TLS, {a.labels['medium']}: MB/s at the client"
        tls_one = f"(c-tls) RETR all over TLS, {a.labels['medium']}: MB/s at the client"

        def tls_floor(name, key):
            return statistics.median(x[key] for x in res[(name, "floor")])

        out += [
            "* TLS rows (a-tls), (c-tls): implicit TLS (port-995 style, the handshake before the greeting):"
            " popper `-l 2` from the same openbsd-inetd; Dovecot a third instance, its pop3s listener only,"
            " `ssl = required`; both with the same self-signed ECDSA P-256 certificate and key (made by the bench"
            " with openssl); popa3d has no TLS",
            f"* TLS client: Python's ssl ({ssl.OPENSSL_VERSION}), TLS 1.3 only, the certificate verified,"
            " no session resumption (every session a full handshake); negotiated: "
            + "; ".join(f"{'floor' if s == 'floor' else s} {' '.join(v)}" for s, v in seen.items()),
            "* TLS floors (`bench/tls-floor`: rustls with popper's provider and settings, per connection from the"
            " same inetd, the same certificate, nothing behind the handshake): handshake + greeting"
            f" {tls_floor('(a-tls) sessions/s over TLS, small mailbox', 'rate'):.0f} sessions/s;"
            f" the medium mailbox streamed {tls_floor(tls_pipe, 'mbps'):.0f} MB/s;"
            f" one request-response round trip (echo) {tls_floor(tls_one, 'rtt') * 1e6:.0f} µs;"
            f" (a-tls) is {a.tls_sessions} sessions a run",
        ]
    out += [
        f"* whole bench: {(time.monotonic() - started) / 60:.1f} min",
        "",
        text,
        "",
    ]
    report = "\n".join(out)
    print()
    print(report)
    with open(a.out, "w") as f:
        f.write(report)
    print(f"written to {a.out}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--work", required=True)
    r.add_argument("--popper", required=True)
    r.add_argument("--popa3d", required=True)
    r.add_argument("--popa3d-deb", default="")
    r.add_argument("--user", required=True)
    r.add_argument("--password", required=True)
    r.add_argument("--repeats", type=int, default=5)
    r.add_argument("--sessions", type=int, default=500)
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--small", default="100,2")
    r.add_argument("--medium", default="1000,50")
    r.add_argument("--large", default="20000,1000")
    r.add_argument("--maildir", dest="maildir_spec", default="20000,1000")
    r.add_argument("--tls", type=int, default=1)
    r.add_argument("--tls-floor", default="")
    r.add_argument("--tls-sessions", type=int, default=200)
    r.add_argument("--grow", default="10000,200")
    r.add_argument("--many", default="200000,200")
    r.add_argument("--rows", default="all", choices=["all", "maildir", "growing"])
    r.add_argument("--out", required=True)
    a = ap.parse_args()

    def stop(signum, frame):
        raise SystemExit(130)

    # peers.sh stops the run with SIGTERM: the servers are stopped too (the
    # finally in run()).
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        run(a)
    except BenchError as e:
        print(f"bench/peers.py: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
