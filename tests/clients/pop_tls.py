#!/usr/bin/python3
"""POP3 sessions with Python's poplib, over TLS or not, as the TLS tests need.

usage: pop_tls.py JSON

JSON is one session (an object) or a list of them; the answer on stdout is,
for each session in order, lines KEY TAB VALUE and a line `--` (see emit). A session's keys:

  host, port       where to connect (connection refused is retried for 10 s)
  mode             "plain", "stls" (poplib.POP3 + stls()) or "ssl" (POP3_SSL)
  cafile           the CA the certificate is verified against (TLS modes)
  servername       the name checked (default: host)
  method           "none", "user", "apop", "plain", "login", "cram-md5",
                   "scram-sha-256"
  user, secret     the credentials (secret: password, or APOP/SASL secret)
  capa             ask CAPA before login (and after STLS)
  retr             a directory: UIDL and RETR of every message into it
                   (uidl.txt; N.msg, lines with CRLF, dot-stuffing undone)
  script           "inject": the STLS injection probe instead of a session
                   "stls-twice": STLS, then STLS again over TLS

An answer has: greeting, capa (before TLS), stls (its reply), tls (version
and cipher), capa_tls (after STLS), login (every reply of the login, in
order), ok (the login's last reply was +OK), stat, quit; and error /
error_type when something raised (a refused certificate, a -ERR).
"""
import base64
import hashlib
import hmac
import json
import os
import poplib
import socket
import ssl
import sys
import time

poplib._MAXLINE = 1 << 20


def b64(b):
    if isinstance(b, str):
        b = b.encode()
    return base64.b64encode(b).decode()


def context(s):
    ctx = ssl.create_default_context(cafile=s["cafile"])
    return ctx


def connect(s):
    deadline = time.time() + 10
    while True:
        try:
            if s.get("mode") == "ssl":
                return poplib.POP3_SSL(s["host"], s["port"], timeout=30, context=context(s))
            return poplib.POP3(s["host"], s["port"], timeout=30)
        except ConnectionRefusedError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def resp(r):
    return r.decode("utf-8", "replace")


def scram(p, user, password, steps):
    nonce = b64(os.urandom(18))
    bare = f"n={user},r={nonce}"
    r = p._shortcmd("AUTH SCRAM-SHA-256 " + b64("n,," + bare))
    steps.append(resp(r))
    server_first = base64.b64decode(r[2:]).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    assert attrs["r"].startswith(nonce), server_first
    salt = base64.b64decode(attrs["s"])
    iters = int(attrs["i"])
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iters)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored = hashlib.sha256(client_key).digest()
    final_wo_proof = f"c={b64('n,,')},r={attrs['r']}"
    auth_message = f"{bare},{server_first},{final_wo_proof}".encode()
    sig = hmac.new(stored, auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    r = p._shortcmd(b64(f"{final_wo_proof},p={b64(proof)}"))
    steps.append(resp(r))
    if not r.startswith(b"+ "):
        return
    server_final = base64.b64decode(r[2:]).decode()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    want = b64(hmac.new(server_key, auth_message, hashlib.sha256).digest())
    if server_final != f"v={want}":
        raise Exception(f"server signature wrong: {server_final!r}, want v={want}")
    r = p._shortcmd("")
    steps.append(resp(r))


def login(p, s, steps):
    m = s.get("method", "user")
    user, secret = s.get("user", ""), s.get("secret", "")
    if m == "none":
        return
    if m == "user":
        steps.append(resp(p.user(user)))
        steps.append(resp(p.pass_(secret)))
    elif m == "apop":
        steps.append(resp(p.apop(user, secret)))
    elif m == "plain":
        steps.append(resp(p._shortcmd("AUTH PLAIN " + b64(f"\0{user}\0{secret}"))))
    elif m == "login":
        steps.append(resp(p._shortcmd("AUTH LOGIN")))
        steps.append(resp(p._shortcmd(b64(user))))
        steps.append(resp(p._shortcmd(b64(secret))))
    elif m == "cram-md5":
        r = p._shortcmd("AUTH CRAM-MD5")
        steps.append(resp(r))
        challenge = base64.b64decode(r[2:])
        d = hmac.new(secret.encode(), challenge, hashlib.md5).hexdigest()
        steps.append(resp(p._shortcmd(b64(f"{user} {d}"))))
    elif m == "scram-sha-256":
        scram(p, user, secret, steps)
    else:
        raise Exception(f"unknown method {m}")


def capa(p):
    return [" ".join([k] + v) for k, v in p.capa().items()]


def tls_info(sock):
    return {"version": sock.version(), "cipher": sock.cipher()[0]}


def session(s):
    out = {}
    steps = []
    out["login"] = steps
    p = None
    try:
        p = connect(s)
        out["greeting"] = resp(p.getwelcome())
        if s.get("mode") == "ssl":
            out["tls"] = tls_info(p.sock)
        if s.get("capa"):
            out["capa"] = capa(p)
        if s.get("mode") == "stls":
            ctx = context(s)
            if s.get("servername"):
                p.host = s["servername"]
            out["stls"] = resp(p.stls(ctx))
            out["tls"] = tls_info(p.sock)
            if s.get("capa"):
                out["capa_tls"] = capa(p)
        if s.get("script") == "stls-twice":
            try:
                out["stls2"] = resp(p._shortcmd("STLS"))
            except poplib.error_proto as e:
                out["stls2"] = resp(e.args[0])
            out["noop_after"] = "connection open"
            out["capa_after"] = capa(p)
        login(p, s, steps)
        out["ok"] = bool(steps) and steps[-1].startswith("+OK")
        if s.get("retr"):
            d = s["retr"]
            count, _ = p.stat()
            out["stat"] = count
            _, uidls, _ = p.uidl()
            with open(os.path.join(d, "uidl.txt"), "wb") as f:
                f.write(b"".join(l + b"\n" for l in uidls))
            for i in range(1, count + 1):
                _, lines, _ = p.retr(i)
                with open(os.path.join(d, f"{i}.msg"), "wb") as f:
                    f.write(b"".join(l + b"\r\n" for l in lines))
        elif out["ok"]:
            out["stat"] = p.stat()[0]
        out["quit"] = resp(p.quit())
    except poplib.error_proto as e:
        a = e.args[0]
        out["error"] = resp(a) if isinstance(a, bytes) else str(a)
        out["error_type"] = "error_proto"
        if isinstance(a, bytes):
            steps.append(resp(a))
    except Exception as e:  # a refused certificate, a closed connection
        out["error"] = str(e)
        out["error_type"] = type(e).__name__
    out.setdefault("ok", False)
    return out


def readline(sock):
    line = b""
    while not line.endswith(b"\n"):
        c = sock.recv(1)
        if not c:
            break
        line += c
    return line


def records_ok(raw):
    """Whether raw is a sequence of whole TLS records (or a prefix of one)."""
    i = 0
    while i < len(raw):
        if i + 5 > len(raw):
            return True
        ctype, major = raw[i], raw[i + 1]
        if ctype not in (20, 21, 22, 23) or major != 3:
            return False
        i += 5 + int.from_bytes(raw[i + 3:i + 5], "big")
    return True


def inject(s):
    """STLS and a USER in one write: the USER must never be answered."""
    out = {}
    sock = socket.create_connection((s["host"], s["port"]), timeout=30)
    out["greeting"] = readline(sock).decode("utf-8", "replace")
    sock.sendall(b"STLS\r\nUSER pt_injected\r\n")
    out["stls"] = readline(sock).decode("utf-8", "replace")
    time.sleep(0.5)
    # A socket with a timeout waits for data before any recv: peek in
    # non-blocking mode.
    sock.setblocking(False)
    try:
        pending = sock.recv(65536, socket.MSG_PEEK)
    except BlockingIOError:
        pending = b""
    sock.settimeout(30)
    out["pending_before_handshake"] = pending.decode("latin-1")
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context(s).wrap_bio(incoming, outgoing, server_hostname=s.get("servername", s["host"]))
    raw = bytearray()

    def pump_in():
        data = sock.recv(65536)
        if not data:
            raise EOFError("closed by the server")
        raw.extend(data)
        incoming.write(data)

    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            sock.sendall(outgoing.read())
            pump_in()
    sock.sendall(outgoing.read())
    out["tls"] = {"version": tls.version(), "cipher": tls.cipher()[0]}

    def write(b):
        tls.write(b)
        sock.sendall(outgoing.read())

    buf = bytearray()

    def line():
        while b"\n" not in buf:
            try:
                data = tls.read(65536)
                if not data:  # close_notify
                    raise EOFError("TLS closed by the server")
                buf.extend(data)
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                pump_in()
        i = buf.index(b"\n") + 1
        l = bytes(buf[:i])
        del buf[:i]
        return l.decode("utf-8", "replace")

    write(b"CAPA\r\n")
    after = [line()]
    if after[0].startswith("+OK"):
        while after[-1] != ".\r\n":
            after.append(line())
    write(b"QUIT\r\n")
    after.append(line())
    # Anything else the server sends over TLS before it closes.
    try:
        while True:
            try:
                data = tls.read(65536)
                if not data:  # close_notify
                    break
                buf.extend(data)
            except ssl.SSLWantReadError:
                pump_in()
    except (EOFError, ssl.SSLError, OSError):
        pass
    if buf:
        after.append(bytes(buf).decode("utf-8", "replace"))
    out["after"] = after
    out["raw_records_ok"] = records_ok(bytes(raw))
    out["raw_first_byte"] = raw[0] if raw else None
    return out


def run(s):
    if s.get("script") == "inject":
        try:
            return inject(s)
        except Exception as e:
            return {"error": str(e), "error_type": type(e).__name__}
    return session(s)


def esc(v):
    if v is None:
        return ""
    if v is True or v is False:
        return "true" if v else "false"
    return str(v).replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


def emit(out):
    """One line per value, KEY TAB VALUE (backslash, CR, LF, TAB escaped);
    a list's items are KEY.N, a dict's KEY.NAME; `--` ends the session."""
    for k, v in out.items():
        if isinstance(v, list):
            for i, x in enumerate(v):
                print(f"{k}.{i}\t{esc(x)}")
        elif isinstance(v, dict):
            for n, x in v.items():
                print(f"{k}.{n}\t{esc(x)}")
        else:
            print(f"{k}\t{esc(v)}")
    print("--")


arg = json.loads(sys.argv[1])
for s in arg if isinstance(arg, list) else [arg]:
    emit(run(s))
