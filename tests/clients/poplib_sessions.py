#!/usr/bin/python3
"""Download-and-delete sessions with Python's poplib, one per input line.

usage: poplib_sessions.py PORT USER SECRET

For each line read on standard input, runs one session: USER, PASS, STAT,
RETR of every message, DELE of every message, QUIT; then prints one line
and flushes it:

    OK COUNT N1 N2 ...   the session ended with +OK to QUIT; COUNT is what
                         STAT said, N1... the X-Seq numbers RETR returned,
                         in message order (a message whose X-Seq header and
                         "seq N" body line disagree, or that lacks either,
                         is printed as BAD:HEADER:BODY)
    IN-USE TEXT          PASS was refused with [IN-USE] (another session
                         holds the maildrop): nothing was done
    ERR STAGE SEEN TEXT  anything else went wrong at STAGE (connect, user,
                         pass, stat, retr, dele, quit); SEEN is the numbers
                         retrieved so far, comma-separated ("-" for none)

Exits at the end of its input.
"""
import poplib
import re
import sys

poplib._MAXLINE = 1 << 20

HEADER = re.compile(rb"^X-Seq: (\d+)$")
BODY = re.compile(rb"^seq (\d+)$")


def seq_of(lines):
    """The message's X-Seq number, or BAD:... when header and body differ."""
    header = body = None
    in_header = True
    for l in lines:
        if in_header:
            if l == b"":
                in_header = False
                continue
            m = HEADER.match(l)
            if m and header is None:
                header = m.group(1).decode()
        else:
            m = BODY.match(l)
            if m and body is None:
                body = m.group(1).decode()
    if header is not None and header == body:
        return header
    return f"BAD:{header}:{body}"


def text(e):
    a = e.args[0] if e.args else e
    if isinstance(a, bytes):
        a = a.decode("utf-8", "replace")
    return " ".join(str(a).split())


def session(port, user, secret):
    seen = []
    stage = "connect"
    p = None
    try:
        p = poplib.POP3("127.0.0.1", port, timeout=60)
        stage = "user"
        p.user(user)
        stage = "pass"
        try:
            p.pass_(secret)
        except poplib.error_proto as e:
            if "[IN-USE]" in text(e):
                return f"IN-USE {text(e)}"
            raise
        stage = "stat"
        count, _ = p.stat()
        stage = "retr"
        for i in range(1, count + 1):
            _, lines, _ = p.retr(i)
            seen.append(seq_of(lines))
        stage = "dele"
        for i in range(1, count + 1):
            p.dele(i)
        stage = "quit"
        p.quit()
        p = None
        return " ".join(["OK", str(count)] + seen)
    except Exception as e:  # noqa: BLE001 - every failure is reported
        return f"ERR {stage} {','.join(seen) or '-'} {type(e).__name__}: {text(e)}"
    finally:
        if p is not None:
            try:
                p.close()
            except OSError:
                pass


def main():
    port, user, secret = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    for _ in sys.stdin:
        print(session(port, user, secret), flush=True)


main()
