#!/usr/bin/env python3
"""The update benchmark's driver (bench/update.sh runs it; see bench/README.md).

    update.py run --work DIR --log-dir DIR --popper BIN --user U --password P ...
    update.py baseline ...      (internal: one qpopper-2.53-style session)

`run` generates a seeded mbox, then for every scenario and repetition resets
the spool from a pristine copy, runs one real popper session against it in a
private mount namespace (its own /var/mail) and the same operations done
qpopper 2.53's way (copy the spool to a temporary drop and back), checks the
replies and the resulting spool, and prints and writes the table.

Every failure raises BenchError: the message is printed and the exit status
is 1, so `bench/update.sh` fails loudly.
"""

import argparse
import bisect
import email.utils
import hashlib
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import threading
import time

SCENARIOS = [
    ("no-change", "login, STAT, QUIT"),
    ("delete-all", "DELE 1..N, QUIT"),
    ("delete-first", "DELE 1, QUIT"),
    ("delete-middle", "DELE N/2+1, QUIT"),
    ("delete-last", "DELE N, QUIT"),
]


def deleted(scenario, n):
    """The messages a scenario deletes (0-based)."""
    return {
        "no-change": [],
        "delete-all": list(range(n)),
        "delete-first": [0],
        "delete-middle": [n // 2],
        "delete-last": [n - 1],
    }[scenario]


def expectation(meta, scenario):
    """What each side must leave and write, from the generated offsets.

    popper (update.rs): with k the first deleted message, nothing changes
    before k; if every message from k on is deleted the spool is cut at k
    (no data written), else the tail from k is rewritten through the
    journal: the tail's bytes twice, plus the journal's 4096-byte header
    block twice (zeros at creation, the header at the commit); each kept
    message from k on gains its X-UIDL and Status lines. The baseline
    writes back exactly the kept messages' bytes."""
    lens = meta["lens"]
    n = len(lens)
    offs = [0]
    for x in lens:
        offs.append(offs[-1] + x)
    dead = set(deleted(scenario, n))
    keep = []
    for i in range(n):
        if i in dead:
            continue
        if keep and keep[-1][1] == offs[i]:
            keep[-1] = (keep[-1][0], offs[i + 1])
        else:
            keep.append((offs[i], offs[i + 1]))
    kept_bytes = sum(b - a for a, b in keep)
    growth = 0 if meta["written_back"] else WRITEBACK_GROWTH
    if not dead:
        p_size, p_data = offs[n], 0
    else:
        k = min(dead)
        if all(i in dead for i in range(k, n)):
            p_size, p_data = offs[k], 0
        else:
            tail = sum(lens[i] + growth for i in range(k, n) if i not in dead)
            p_size, p_data = offs[k] + tail, 2 * tail + 2 * 4096
    return {
        "keep": keep,
        "baseline_size": kept_bytes,
        "popper_size": p_size,
        "popper_data": p_data,
        "offs": offs,
        "first_deleted": min(dead) if dead else None,
    }

# What popper inserts into each kept message it writes back (update-status
# on, the generated messages having neither header): "X-UIDL: <32 hex>\n"
# right after the envelope and "Status: U\n" before the blank line.
WRITEBACK_GROWTH = len("X-UIDL: ") + 32 + 1 + len("Status: U\n")

SESSION_LIMIT = 900  # seconds; a session running longer is killed


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------
# The mailbox


COMMON = (
    "the of and to a in is it you that he was for on are with as his they be "
    "at one have this or had by hot word but what some we can out other were "
    "all there when up use your how said an each she which do their time if "
    "will way about many then them write would like so these her long make "
    "thing see him two has look more day could go come did number sound no "
    "most people my over know water than call first who may down side been "
    "now find any new work part take get place made live where after back "
    "little only round man year came show every good me give our under name "
    "very through just form sentence great think say help low line differ "
    "turn cause much mean before move right boy old too same tell does set "
    "three want air well also play small end put home read hand port large "
    "spell add even land here must big high such follow act why ask men "
    "change went light kind off need house picture try us again animal point "
    "mother world near build self earth father head stand own page should "
    "country found answer school grow study still learn plant cover food sun "
    "four between state keep eye never last let thought city tree cross farm "
    "hard start might story saw far sea draw left late run while press close "
    "night real life few north open seem together next white children begin "
    "got walk example ease paper group always music those both mark often "
    "letter until mile river car feet care second book carry took science "
    "eat room friend began idea fish mountain stop once base hear horse cut "
    "sure watch color face wood main enough plain girl usual young ready "
    "above ever red list though feel talk bird soon body dog family direct "
    "pose leave song measure door product black short numeral class wind "
    "question happen complete ship area half rock order fire south problem "
    "piece told knew pass since top whole king space heard best hour better "
    "true during hundred five remember step early hold west ground interest "
    "reach fast verb sing listen six table travel less morning ten simple "
    "several vowel toward war lay against pattern slow center love person "
    "money serve appear road map rain rule govern pull cold notice voice "
    "unit power town fine certain fly fall lead cry dark machine note wait "
    "plan figure star box noun field rest correct able pound done beauty "
    "drive stood contain front teach week final gave green oh quick develop "
    "ocean warm free minute strong special mind behind clear tail produce "
    "fact street inch multiply nothing course stay wheel full force blue "
    "object decide surface deep moon island foot system busy test record "
    "boat common gold possible plane stead dry wonder laugh thousand ago ran "
    "check game shape equate miss brought heat snow tire bring yes distant "
    "fill east paint language among grand ball yet wave drop heart present "
    "heavy dance engine position arm wide sail material size vary settle "
    "speak weight general ice matter circle pair include divide syllable "
    "felt perhaps pick sudden count square reason length represent art "
    "subject region energy hunt probable bed brother egg ride cell believe "
    "fraction forest sit race window store summer train sleep prove lone leg "
    "exercise wall catch mount wish sky board joy winter sat written wild "
    "instrument kept glass grass cow job edge sign visit past soft fun "
    "bright gas weather month million bear finish happy hope flower clothe "
    "strange gone jump baby eight village meet root buy raise solve metal "
    "whether push seven paragraph third shall held hair describe cook floor "
    "either result burn hill safe cat century consider type law bit coast "
    "copy phrase silent tall sand soil roll temperature finger industry "
    "value fight lie beat excite natural view sense ear else quite broke "
    "case middle kill son lake moment scale loud spring observe child "
    "straight consonant nation dictionary milk speed method organ pay age "
    "section dress cloud surprise quiet stone tiny climb cool design poor "
    "lot experiment bottom key iron single stick flat twenty skin smile "
    "crease hole trade melody trip office receive row mouth exact symbol "
    "die least trouble shout except wrote seed tone join suggest clean "
    "break lady yard rise bad blow oil blood touch grew cent mix team wire "
    "cost lost brown wear garden equal sent choose fell fit flow fair bank "
    "collect save control decimal gentle woman captain practice separate "
    "difficult doctor please protect noon whose locate ring character "
    "insect caught period indicate radio spoke atom human history effect "
    "electric expect crop modern element hit student corner party supply "
    "bone rail imagine provide agree thus capital chair danger fruit rich "
    "thick soldier process operate guess necessary sharp wing create "
    "neighbor wash bat rather crowd corn compare poem string bell depend "
    "meat rub tube famous dollar stream fear sight thin triangle planet "
    "hurry chief colony clock mine tie enter major fresh search send yellow "
    "gun allow print dead spot desert suit current lift rose continue block "
    "chart hat sell success company subtract event particular deal swim "
    "term opposite wife shoe shoulder spread arrange camp invent cotton born "
    "determine quart nine truck noise level chance gather shop stretch "
    "throw shine property column molecule select wrong gray repeat require "
    "broad prepare salt nose plural anger claim continent oxygen sugar "
    "death pretty skill women season solution magnet silver thank branch "
    "match suffix especially fig afraid huge sister steel discuss forward "
    "similar guide experience score apple bought led pitch coat mass card "
    "band rope slip win dream evening condition feed tool total basic smell "
    "valley nor double seat arrive master track parent shore division sheet "
    "substance favor connect post spend chord fat glad original share "
    "station dad bread charge proper bar offer segment slave duck instant "
    "market degree populate chick dear enemy reply drink occur support "
    "speech nature range steam motion path liquid log meant quotient teeth "
    "shell neck"
).split()


def make_vocabulary(rng):
    """Common words plus seeded pseudo-words; no word is `from` in any case,
    so no generated body line can start with `From `."""
    words = [w for w in COMMON if w.lower() != "from"]
    letters = "abcdefghijklmnopqrstuvwxyz"
    for _ in range(3000):
        w = "".join(rng.choice(letters) for _ in range(rng.randint(3, 11)))
        if w != "from":
            words.append(w)
    return words


def text_pool(rng, words, size):
    """About `size` bytes of prose: lines of 30-76 characters, paragraphs
    separated by empty lines, some quoted (`> `) lines. Returns the bytes
    and the offsets where lines start."""
    out = []
    n = 0
    para = 0
    while n < size:
        if para <= 0:
            para = rng.randint(3, 12)
            out.append("\n")
            n += 1
        para -= 1
        width = rng.randint(30, 76)
        parts = [">"] if rng.random() < 0.08 else []
        ln = 2 if parts else 0
        first = True
        while ln < width:
            w = rng.choice(words)
            if first:
                w = w.capitalize()
                first = False
            parts.append(w)
            ln += len(w) + 1
        line = " ".join(parts) + ".\n"
        out.append(line)
        n += len(line)
    data = "".join(out).encode()
    starts = [0]
    i = data.find(b"\n")
    while i != -1 and i + 1 < len(data):
        starts.append(i + 1)
        i = data.find(b"\n", i + 1)
    return data, starts


def b64_pool(rng, size):
    import base64

    raw = rng.randbytes(size * 3 // 4)
    enc = base64.b64encode(raw)
    lines = [enc[i : i + 76] for i in range(0, len(enc), 76)]
    data = b"\n".join(lines) + b"\n"
    return data, 77  # every line is 76 characters and an LF


def slice_lines(data, starts, rng, want):
    """At least `want` bytes of whole lines of a text pool, from a random
    line, as a memoryview."""
    limit = len(data) - want - 200
    if limit <= 0:
        raise BenchError("text pool too small")
    i = rng.randrange(bisect.bisect_right(starts, limit))
    a = starts[i]
    j = bisect.bisect_left(starts, a + want)
    b = starts[j] if j < len(starts) else len(data)
    return memoryview(data)[a:b]


def asctime(t):
    # The envelope's date: `Wed Dec  2 05:53:22 1992` (day padded with a space).
    g = time.gmtime(t)
    return time.strftime("%a %b ", g) + f"{g.tm_mday:2d}" + time.strftime(" %H:%M:%S %Y", g)


def draw_sizes(rng, n, total):
    """Message sizes: mostly 2-50 KB text, ~3% 100 KB-5 MB with base64
    attachments (log-uniform within each range). The large ones are scaled
    (within their range) so the mailbox comes to about `total` bytes. A
    mailbox of many small messages (under 4 KB on average: notifications,
    list traffic) gets 0.6-6 KB messages without attachments, scaled to
    `total`."""
    if total / max(n, 1) < 4e3:
        sizes = [int(600 * (10 ** rng.random())) for _ in range(n)]
        f = total / max(1, sum(sizes))
        return [max(600, int(x * f)) for x in sizes], set()
    sizes = []
    large = []
    for i in range(n):
        if rng.random() < 0.03:
            large.append(i)
            sizes.append(int(100e3 * (50 ** rng.random())))
        else:
            sizes.append(int(2e3 * (25 ** rng.random())))
    large_set = set(large)
    small_total = sum(s for i, s in enumerate(sizes) if i not in large_set)
    for _ in range(8):
        large_total = sum(sizes[i] for i in large)
        if not large or large_total == 0:
            break
        f = (total - small_total) / large_total
        if abs(f - 1) < 0.002:
            break
        for i in large:
            sizes[i] = int(min(5e6, max(100e3, sizes[i] * f)))
    return sizes, large_set


def generate(path, n, total, seed, user, written_back):
    """Writes the mbox; returns its metadata (message offsets and lengths)."""
    rng = random.Random(seed)
    words = make_vocabulary(rng)
    text, starts = text_pool(rng, words, 6 << 20)
    b64, _ = b64_pool(rng, 12 << 20)
    b64_starts = range(0, len(b64), 77)
    sizes, large = draw_sizes(rng, n, total)
    senders = [
        f"{rng.choice(words)}.{rng.choice(words)}@{rng.choice(['example.com', 'example.org', 'example.net', 'mail.example.com'])}"
        for _ in range(400)
    ]
    t = 723_275_602  # Wed Dec  2 05:53:22 1992 GMT
    lens = []
    off = 0
    with open(path, "wb", buffering=8 << 20) as f:
        for i in range(n):
            t += rng.randint(30, 9000)
            sender = rng.choice(senders)
            name = " ".join(w.capitalize() for w in sender.split("@")[0].split("."))
            date = email.utils.formatdate(t, localtime=False)
            mid = f"{rng.getrandbits(64):016x}.{i}@{sender.split('@')[1]}"
            subject = " ".join(rng.choice(words) for _ in range(rng.randint(2, 9))).capitalize()
            head = []
            head.append(f"From {sender} {asctime(t)}\n")
            if written_back:
                head.append(f"X-UIDL: {rng.getrandbits(128):032x}\n")
            hop = rng.randint(1, 250)
            head.append(
                f"Received: from mx{hop}.example.net (mx{hop}.example.net [192.0.2.{hop}])\n"
                f"\tby mail.example.com (8.9.3/8.9.3) with ESMTP id {rng.getrandbits(40):010X}\n"
                f"\tfor <{user}@example.com>; {date}\n"
            )
            head.append(f"Date: {date}\n")
            head.append(f"From: {name} <{sender}>\n")
            head.append(f"To: {user}@example.com\n")
            head.append(f"Subject: {subject}\n")
            head.append(f"Message-Id: <{mid}>\n")
            head.append("MIME-Version: 1.0\n")
            want = sizes[i]
            if i in large:
                boundary = f"=_b{rng.getrandbits(48):012x}"
                fname = f"{rng.choice(words)}-{i}.{rng.choice(['pdf', 'zip', 'jpg', 'tar.gz'])}"
                head.append(f'Content-Type: multipart/mixed; boundary="{boundary}"\n')
                if written_back:
                    head.append("Status: U\n")
                head.append("\n")
                intro = bytes(slice_lines(text, starts, rng, rng.randint(300, 3000)))
                part = (
                    f"This is a multi-part message in MIME format.\n\n--{boundary}\n"
                    "Content-Type: text/plain; charset=us-ascii\n\n"
                ).encode() + intro + (
                    f"\n--{boundary}\n"
                    f'Content-Type: application/octet-stream; name="{fname}"\n'
                    "Content-Transfer-Encoding: base64\n"
                    f'Content-Disposition: attachment; filename="{fname}"\n\n'
                ).encode()
                hb = "".join(head).encode()
                left = max(77, want - len(hb) - len(part) - len(boundary) - 8)
                lines = -(-left // 77)
                k = rng.randrange(len(b64_starts) - lines - 1)
                body = [part, memoryview(b64)[k * 77 : (k + lines) * 77], f"--{boundary}--\n".encode()]
            else:
                head.append("Content-Type: text/plain; charset=us-ascii\n")
                if written_back:
                    head.append("Status: U\n")
                head.append("\n")
                hb = "".join(head).encode()
                body = [slice_lines(text, starts, rng, max(1, want - len(hb)))]
            f.write(hb)
            m = len(hb)
            for b in body:
                f.write(b)
                m += len(b)
            # The empty line that ends the message: the next envelope
            # follows an empty line, as the mbox format requires.
            f.write(b"\n")
            m += 1
            lens.append(m)
            off += m
    return {"messages": n, "bytes": off, "lens": lens, "seed": seed, "written_back": written_back}


# --------------------------------------------------------------------------
# Measuring a child process


def finish(pid):
    """Waits for `pid` to exit without reaping it, reads its /proc/PID/io
    (which includes the children it reaped: sh's mount), then reaps it.
    Returns (exit status, io dict, peak RSS in bytes)."""
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    io = {}
    try:
        with open(f"/proc/{pid}/io") as fh:
            for line in fh:
                k, v = line.split(":")
                io[k.strip()] = int(v)
    except OSError as e:
        raise BenchError(f"cannot read /proc/{pid}/io: {e}")
    _, status, ru = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), io, ru.ru_maxrss * 1024


class Watchdog:
    def __init__(self, pgid, limit):
        self.done = threading.Event()
        self.fired = False

        def run():
            if not self.done.wait(limit):
                self.fired = True
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

        threading.Thread(target=run, daemon=True).start()

    def stop(self):
        self.done.set()


# --------------------------------------------------------------------------
# One popper session


# In the namespace: bind the work dir's mail directory over /var/mail, then
# run popper under GNU time, whose %M is popper's own peak RSS. (The peak RSS
# that wait4 reports for a child of this Python process would include this
# process's memory at the fork, which exec keeps as the child's high mark.)
NS_SCRIPT = 'set -e\nmount --bind "$1" /var/mail\nshift\nexec "$@"\n'
TIME = "/usr/bin/time"


def read_rss(path):
    """Peak RSS in bytes from `time -f %M -o path` (its last line, in kB)."""
    try:
        lines = open(path).read().split()
        return int(lines[-1]) * 1024
    except (OSError, ValueError, IndexError):
        raise BenchError(f"cannot read the peak RSS from {path}")


def child_of(ppid):
    """The pid of a child process of `ppid` (popper, under time)."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == ppid:
            return int(d)
    return None


def memory_now(pid):
    """(VmRSS, VmHWM) of a live process, in bytes."""
    got = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                got[k] = int(v.split()[0]) * 1024
    return got["VmRSS"], got["VmHWM"]


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def popper_session(a, meta, scenario, errfile):
    n = meta["messages"]
    dele = [i + 1 for i in deleted(scenario, n)]
    rss_file = os.path.join(a.log_dir, "rss.txt")
    cmd = [
        "unshare", "-m", "--propagation", "private", "--",
        "/bin/sh", "-c", NS_SCRIPT, "sh", a.mail,
        TIME, "-f", "%M", "-o", rss_file, a.popper, "-f", a.conf,
    ]
    log_before = file_size(a.popper_log)
    replies = [0]
    err = open(errfile, "wb")
    t0 = time.monotonic()
    p = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
        start_new_session=True,
    )
    dog = Watchdog(p.pid, SESSION_LIMIT)
    transcript = []
    reaped = False

    def rd(what):
        line = p.stdout.readline()
        replies[0] += len(line)
        transcript.append(b"S: " + line)
        if not line.startswith(b"+OK"):
            raise BenchError(f"popper, {scenario}, {what}: expected +OK, got {line!r}")
        return line

    def send(data, show=None):
        transcript.append(b"C: " + (show or data))
        p.stdin.write(data)
        p.stdin.flush()

    try:
        rd("greeting")
        t_greet = time.monotonic()
        send(f"USER {a.user}\r\n".encode())
        rd("USER")
        t1 = time.monotonic()
        send(f"PASS {a.password}\r\n".encode(), b"PASS xxxx\r\n")
        rd("PASS")
        t_login = time.monotonic() - t1
        send(b"STAT\r\n")
        stat = rd("STAT").split()
        # Memory once logged in: the mailbox's index is built. The peak so
        # far includes the password check (yescrypt uses 16 MB or so);
        # resetting the high-water mark (clear_refs 5) makes time's %M the
        # peak from here to the end, the update included.
        pid = child_of(p.pid)
        if pid is None:
            raise BenchError(f"popper, {scenario}: cannot find popper's pid under time ({p.pid})")
        rss_login, hwm_login = memory_now(pid)
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5\n")
        if len(stat) < 3 or int(stat[1]) != n:
            raise BenchError(f"popper, {scenario}: STAT says {stat!r}, the mbox has {n} messages")
        t2 = time.monotonic()
        if dele:
            payload = b"".join(f"DELE {i}\r\n".encode() for i in dele)
            transcript.append(f"C: DELE x {len(dele)}\r\n".encode())
            box = {}

            def feed():
                try:
                    p.stdin.write(payload)
                    p.stdin.flush()
                except OSError as e:
                    box["err"] = e

            w = threading.Thread(target=feed)
            w.start()
            for i in dele:
                line = p.stdout.readline()
                replies[0] += len(line)
                if not line.startswith(b"+OK"):
                    transcript.append(b"S: " + line)
                    raise BenchError(f"popper, {scenario}, DELE {i}: expected +OK, got {line!r}")
            w.join()
            if "err" in box:
                raise BenchError(f"popper, {scenario}: writing DELEs: {box['err']}")
        t_dele = time.monotonic() - t2
        tq = time.monotonic()
        send(b"QUIT\r\n")
        rd("QUIT")
        t_update = time.monotonic() - tq
        p.stdin.close()
        rest = p.stdout.read()
        if rest:
            raise BenchError(f"popper, {scenario}: unexpected output after QUIT: {rest[:200]!r}")
        code, io, _ = finish(p.pid)
        reaped = True
        t_total = time.monotonic() - t0
        if code != 0:
            raise BenchError(f"popper, {scenario}: exit status {code}")
        rss_rest = read_rss(rss_file)
        # Bytes popper wrote to files (spool, journal, lock files): all it
        # wrote (write, pwrite, copy_file_range), less the replies on
        # stdout, its log lines and time's one line.
        data = io.get("wchar", 0) - replies[0] - (file_size(a.popper_log) - log_before) - file_size(rss_file)
        return {
            "data": data,
            "session": t_total,
            "update": t_update,
            "login": t_login,
            "greeting": t_greet - t0,
            "dele": t_dele,
            "write_bytes": io.get("write_bytes", 0),
            "wchar": io.get("wchar", 0),
            "rchar": io.get("rchar", 0),
            "read_bytes": io.get("read_bytes", 0),
            "cancelled": io.get("cancelled_write_bytes", 0),
            "rss": max(hwm_login, rss_rest),
            "rss_login": rss_login,
            "hwm_login": hwm_login,
            "rss_rest": rss_rest,
        }
    except BenchError as e:
        err.flush()
        tail = open(errfile, "rb").read()[-2000:].decode(errors="replace")
        log = ""
        try:
            log = open(a.popper_log, "rb").read()[-3000:].decode(errors="replace")
        except OSError:
            pass
        shown = b"".join(transcript[-12:]).decode(errors="replace")
        raise BenchError(
            f"{e}\n--- last lines of the dialogue:\n{shown}--- popper stderr:\n{tail}\n--- popper log ({a.popper_log}):\n{log}"
        )
    except (BrokenPipeError, ValueError) as e:
        raise BenchError(f"popper, {scenario}: the session broke off: {e}")
    finally:
        dog.stop()
        if not reaped:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=30)
            except Exception:
                pass
        err.close()
        if dog.fired:
            raise BenchError(f"popper, {scenario}: killed after {SESSION_LIMIT} s")


# --------------------------------------------------------------------------
# The qpopper 2.53 baseline


BUF = 1 << 20


def copy_range(src, dst, start, end, out_off):
    """A plain read/write copy of src[start:end) to dst at out_off."""
    pos = start
    o = out_off
    while pos < end:
        chunk = os.pread(src, min(BUF, end - pos), pos)
        if not chunk:
            raise BenchError("baseline: short read")
        view = memoryview(chunk)
        while view:
            k = os.pwrite(dst, view, o)
            view = view[k:]
            o += k
        pos += len(chunk)
    return o - out_off


def baseline_child(args):
    """One qpopper-2.53-style session (qpopper.md §9.3, §9.6) as plain
    file copies: at login copy the spool to the temporary drop and
    truncate the spool; at QUIT copy the kept messages back (nothing when
    all were deleted), then truncate and unlink the temporary drop. Prints
    its phase times as JSON."""
    t0 = time.monotonic()
    spool = os.open(args.spool, os.O_RDWR)
    size = os.fstat(spool).st_size
    temp = os.open(args.temp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    copy_range(spool, temp, 0, size, 0)
    os.ftruncate(spool, 0)
    t1 = time.monotonic()
    keep = json.loads(args.keep)
    if any(b > size for _, b in keep):
        raise BenchError("baseline: a kept range lies past the end of the spool")
    out = 0
    for a, b in keep:
        out += copy_range(temp, spool, a, b, out)
    if keep and args.fsync:
        os.fsync(spool)
    os.ftruncate(temp, 0)
    os.close(temp)
    os.unlink(args.temp)
    os.close(spool)
    t2 = time.monotonic()
    print(json.dumps({"login": t1 - t0, "update": t2 - t1}))


def baseline_session(a, meta, scenario):
    rss_file = os.path.join(a.log_dir, "rss-baseline.txt")
    cmd = [
        TIME, "-f", "%M", "-o", rss_file,
        sys.executable, os.path.abspath(__file__), "baseline",
        "--spool", a.spool, "--temp", os.path.join(a.mail, f".{a.user}.pop"),
        "--keep", json.dumps(expectation(meta, scenario)["keep"]),
        "--fsync", "1" if a.baseline_fsync else "0",
    ]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    dog = Watchdog(p.pid, SESSION_LIMIT)
    reaped = False
    try:
        out = p.stdout.read()
        errs = p.stderr.read()
        code, io, rss = finish(p.pid)
        reaped = True
    finally:
        dog.stop()
        if not reaped:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
    t_total = time.monotonic() - t0
    if code != 0:
        raise BenchError(f"baseline, {scenario}: exit status {code}: {errs.decode(errors='replace')}")
    ph = json.loads(out)
    data = io.get("wchar", 0) - len(out) - file_size(rss_file)
    rss = read_rss(rss_file)
    return {
        "data": data,
        "session": t_total,
        "update": ph["update"],
        "login": ph["login"],
        "write_bytes": io.get("write_bytes", 0),
        "wchar": io.get("wchar", 0),
        "rchar": io.get("rchar", 0),
        "read_bytes": io.get("read_bytes", 0),
        "cancelled": io.get("cancelled_write_bytes", 0),
        "rss": rss,
    }


# --------------------------------------------------------------------------
# Setting up and checking each run


def sh(*cmd, check=True):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check and r.returncode != 0:
        raise BenchError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.decode(errors='replace')}")
    return r


def drop_caches(a):
    os.sync()
    if a.drop_caches:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")


def reset(a, meta):
    """The spool as generated, owned by the user, group mail, 0660; no
    leftover lock, journal or temporary drop; page cache dropped."""
    for name in os.listdir(a.mail):
        os.unlink(os.path.join(a.mail, name))
    sh("cp", "--reflink=auto", a.pristine, a.spool)
    os.chown(a.spool, a.uid, a.mail_gid)
    os.chmod(a.spool, 0o660)
    if os.path.getsize(a.spool) != meta["bytes"]:
        raise BenchError("reset: the spool copy has the wrong size")
    drop_caches(a)


def cmp(a, b, skip_a=0, skip_b=0, n=None):
    cmd = ["cmp", "-s"]
    if n is not None:
        cmd += ["-n", str(n)]
    cmd += [a, b, str(skip_a), str(skip_b)]
    return subprocess.run(cmd).returncode == 0


def uid_2_53(msg):
    """qpopper 2.53's UID of a message without X-UIDL (qpopper.md §9.5):
    MD5 of the envelope line and of the header lines starting Received:,
    Date:, Message-Id: or Subject: (first lines only), with their LFs."""
    h = hashlib.md5()
    lines = msg.split(b"\n")
    h.update(lines[0] + b"\n")
    for line in lines[1:]:
        if line == b"":
            break
        low = line[:11].lower()
        if low.startswith((b"received:", b"date:", b"message-id:", b"subject:")):
            h.update(line[:1022] + b"\n")
    return h.hexdigest()


def written_back(msg):
    """A kept, unread message as popper writes it back: X-UIDL after the
    envelope, Status: U before the blank line (the generated messages have
    neither)."""
    env_end = msg.index(b"\n") + 1
    hdr_end = msg.index(b"\n\n") + 1
    return (
        msg[:env_end] + b"X-UIDL: " + uid_2_53(msg).encode() + b"\n"
        + msg[env_end:hdr_end] + b"Status: U\n" + msg[hdr_end:]
    )


def verify(a, meta, scenario, who, before, full):
    """Checks the spool after a session: its size and bytes are what the
    operations must leave, and nothing is left in the spool directory.
    `full`: check every byte of a rewritten tail (else its two ends)."""
    x = expectation(meta, scenario)
    lens = meta["lens"]
    offs = x["offs"]
    n = meta["messages"]
    size = os.path.getsize(a.spool)
    left = sorted(f for f in os.listdir(a.mail) if f != a.user)
    # No journal, dotlock or temporary drop may stay; an empty session lock
    # file `.USER.pop` may.
    extra = [f for f in left if not (f == f".{a.user}.pop" and os.path.getsize(os.path.join(a.mail, f)) == 0)]
    if extra:
        raise BenchError(f"{who}, {scenario}: files left in the spool directory: {extra}")
    want = x["popper_size"] if who == "popper" else x["baseline_size"]
    if size != want:
        raise BenchError(f"{who}, {scenario}: spool is {size} bytes, expected {want}")

    def kept_ranges_match():
        o = 0
        for s0, e0 in x["keep"]:
            if not cmp(a.spool, a.pristine, o, s0, n=e0 - s0):
                return False
            o += e0 - s0
        return o == size

    if who == "baseline" or meta["written_back"] or x["popper_data"] == 0:
        # Byte for byte the kept messages (for popper: nothing changed, or
        # a truncation, or messages already in written-back form).
        ok = kept_ranges_match()
        if who == "popper" and scenario == "no-change":
            st = os.stat(a.spool)
            if (st.st_mtime_ns, st.st_ino) != before:
                raise BenchError("popper, no-change: the spool was modified (mtime or inode changed)")
    else:
        k = x["first_deleted"]
        ok = k == 0 or cmp(a.spool, a.pristine, n=offs[k])  # the bytes before k
        dead = set(deleted(scenario, n))
        kept = [i for i in range(k, n) if i not in dead]
        with open(a.pristine, "rb") as src, open(a.spool, "rb") as out:
            out.seek(offs[k])
            check = kept if full else kept[:1] + kept[-1:]
            pos = offs[k]
            for i in check:
                if not full:
                    # Skip to message i: every kept message before it grew
                    # by the same two lines.
                    pos = offs[k] + sum(lens[j] + WRITEBACK_GROWTH for j in kept if j < i)
                    out.seek(pos)
                src.seek(offs[i])
                wb = written_back(src.read(lens[i]))
                got = out.read(len(wb))
                if got != wb:
                    raise BenchError(f"popper, {scenario}: message {i + 1} is not written back as expected at offset {pos}")
                pos += len(wb)
            ok = ok and (not full or out.read(1) == b"")
    if not ok:
        raise BenchError(f"{who}, {scenario}: the spool's content is not what it should be")
    return size


# --------------------------------------------------------------------------
# The table


def fmt_t(x):
    if x < 0.001:
        return f"{x * 1e6:.0f} µs"
    if x < 1:
        return f"{x * 1e3:.1f} ms"
    return f"{x:.2f} s"


def fmt_b(x):
    x = int(round(x))
    if x == 0:
        return "0 B"
    for unit, k in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if x >= k:
            return f"{x / k:.2f} {unit}"
    return f"{x} B"


def med(runs, key):
    v = [r[key] for r in runs]
    return statistics.median(v), min(v), max(v)


def spread(runs, key):
    m, lo, hi = med(runs, key)
    return f"{fmt_t(m)} ({fmt_t(lo)}–{fmt_t(hi)})"


def ratio(b, p):
    if p <= 0:
        return "–"
    r = b / p
    return f"{r:.0f}×" if r >= 10 else f"{r:.2f}×"


def table(results, meta):
    rows = []
    rows.append(
        "| scenario | popper session, median (min–max) | popper update (QUIT), median (min–max) "
        "| baseline session, median (min–max) | baseline update, median (min–max) "
        "| ratio baseline/popper, session | ratio, update "
        "| popper bytes written: to files / block layer | baseline bytes written: to files / block layer "
        "| popper peak RSS | popper RSS after login / peak STAT→exit | spool after: popper / baseline |"
    )
    rows.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, what in SCENARIOS:
        p = results[name]["popper"]
        b = results[name]["baseline"]

        def written(runs):
            return (
                f"{fmt_b(statistics.median(r['data'] for r in runs))} / "
                f"{fmt_b(statistics.median(r['write_bytes'] for r in runs))}"
            )

        rows.append(
            f"| {name} ({what}) | {spread(p, 'session')} | {spread(p, 'update')} "
            f"| {spread(b, 'session')} | {spread(b, 'update')} "
            f"| {ratio(med(b, 'session')[0], med(p, 'session')[0])} "
            f"| {ratio(med(b, 'update')[0], med(p, 'update')[0])} "
            f"| {written(p)} | {written(b)} | {fmt_b(max(r['rss'] for r in p))} "
            f"| {fmt_b(max(r['rss_login'] for r in p))} / {fmt_b(max(r['rss_rest'] for r in p))} "
            f"| {fmt_b(p[0]['spool_after'])} / {fmt_b(b[0]['spool_after'])} |"
        )
    return "\n".join(rows)


def details(results):
    rows = [
        "| scenario | who | run | session | login (popper: PASS; baseline: copy to temp drop) | update "
        "| to files | write_bytes | cancelled_write_bytes | wchar | read_bytes | rchar "
        "| peak RSS | popper RSS after login | popper peak STAT→exit | spool after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, _ in SCENARIOS:
        for who in ("popper", "baseline"):
            for i, r in enumerate(results[name][who]):
                extra = (
                    f"{r['rss_login'] // 1024} kB | {r['rss_rest'] // 1024} kB"
                    if who == "popper" else "– | –"
                )
                rows.append(
                    f"| {name} | {who} | {i + 1} | {fmt_t(r['session'])} | {fmt_t(r['login'])} | {fmt_t(r['update'])} "
                    f"| {r['data']} | {r['write_bytes']} | {r['cancelled']} | {r['wchar']} | {r['read_bytes']} "
                    f"| {r['rchar']} | {r['rss'] // 1024} kB | {extra} | {r['spool_after']} |"
                )
    return "\n".join(rows)


def machine():
    def out(*cmd):
        try:
            return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
        except OSError:
            return "?"

    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1048576:.1f} GiB"
    except OSError:
        pass
    return {
        "nproc": out("nproc"),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "tmp_fs": out("findmnt", "-no", "FSTYPE", "-T", "/tmp") or out("stat", "-f", "-c", "%T", "/tmp"),
        "tmp_dev": out("findmnt", "-no", "SOURCE", "-T", "/tmp"),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": out("git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse", "--short", "HEAD"),
        "python": platform.python_version(),
    }


# --------------------------------------------------------------------------


def run(a):
    started = time.monotonic()
    a.mail = os.path.join(a.work, "mail")
    a.spool = os.path.join(a.mail, a.user)
    a.pristine = os.path.join(a.work, "pristine.mbox")
    a.conf = os.path.join(a.work, "popper.conf")
    a.popper_log = os.path.join(a.log_dir, "popper.log")
    a.uid = int(sh("id", "-u", a.user).stdout)
    a.mail_gid = int(sh("getent", "group", "mail").stdout.decode().split(":")[2])
    hashed = sh("getent", "shadow", a.user).stdout.decode().split(":")[1]
    kinds = {"$y$": "yescrypt", "$6$": "SHA-512 crypt", "$5$": "SHA-256 crypt", "$1$": "MD5 crypt", "$2": "bcrypt", "$gy$": "gost-yescrypt"}
    a.hash_kind = next((f"{v} ({hashed[:7]}…)" for k, v in kinds.items() if hashed.startswith(k)), "other")
    os.makedirs(a.mail)
    os.chown(a.mail, 0, a.mail_gid)
    os.chmod(a.mail, 0o2775)  # Debian's /var/mail: root:mail 2775
    # The log goes to a tmpfs (tmpfs pages are not counted in write_bytes),
    # so the only bytes popper is charged for are the spool's and the
    # journal's. update-status is left at its default (on).
    with open(a.conf, "w") as f:
        f.write(f"set auth-fail-delay = 0\nset tracefile = {a.popper_log}\n")

    print(f"generating the mailbox: {a.messages} messages, ~{a.size_mb} MB, seed {a.seed} ...", flush=True)
    t = time.monotonic()
    meta = generate(a.pristine, a.messages, a.size_mb * 1_000_000, a.seed, a.user, a.written_back)
    digest = hashlib.sha256()
    with open(a.pristine, "rb") as f:
        for chunk in iter(lambda: f.read(8 << 20), b""):
            digest.update(chunk)
    meta["sha256"] = digest.hexdigest()
    lens = meta["lens"]
    big = sum(1 for x in lens if x >= 100_000)
    print(
        f"  {meta['bytes']} bytes ({fmt_b(meta['bytes'])}), {meta['messages']} messages "
        f"({big} of 100 kB or more, largest {fmt_b(max(lens))}, smallest {fmt_b(min(lens))}), "
        f"first {lens[0]} B, last {lens[-1]} B, sha256 {meta['sha256'][:16]}…, in {time.monotonic() - t:.1f} s",
        flush=True,
    )
    if a.drop_caches:
        print("page cache: synced and dropped (echo 3 > /proc/sys/vm/drop_caches) before every run", flush=True)
    else:
        print("page cache: synced but NOT dropped between runs", flush=True)

    n = meta["messages"]

    # The fixed part of popper's memory: a session on a one-message mailbox
    # (the first message of the generated one).
    for name in os.listdir(a.mail):
        os.unlink(os.path.join(a.mail, name))
    with open(a.pristine, "rb") as src, open(a.spool, "wb") as dst:
        dst.write(src.read(meta["lens"][0]))
    os.chown(a.spool, a.uid, a.mail_gid)
    os.chmod(a.spool, 0o660)
    one = popper_session(a, {"messages": 1}, "no-change", os.path.join(a.log_dir, "stderr.txt"))
    fixed = (
        f"peak {fmt_b(one['rss'])}, after login {fmt_b(one['rss_login'])}, "
        f"peak from STAT to exit {fmt_b(one['rss_rest'])}"
    )
    fixed += f"; its login (PASS) took {fmt_t(one['login'])}"
    print(f"popper RSS on a one-message mailbox (the fixed cost): {fixed}; password hash: {a.hash_kind}", flush=True)

    results = {name: {"popper": [], "baseline": []} for name, _ in SCENARIOS}
    for rep in range(a.repeats):
        for name, _ in SCENARIOS:
            order = ("popper", "baseline") if rep % 2 == 0 else ("baseline", "popper")
            for who in order:
                reset(a, meta)
                st = os.stat(a.spool)
                before = (st.st_mtime_ns, st.st_ino)
                if who == "popper":
                    r = popper_session(a, meta, name, os.path.join(a.log_dir, "stderr.txt"))
                else:
                    r = baseline_session(a, meta, name)
                r["spool_after"] = verify(a, meta, name, who, before, full=rep == 0)
                results[name][who].append(r)
                print(
                    f"  run {rep + 1}/{a.repeats} {name:12} {who:8}: session {fmt_t(r['session'])}, "
                    f"update {fmt_t(r['update'])}, wrote {fmt_b(r['data'])} to files "
                    f"({fmt_b(r['write_bytes'])} block layer), "
                    f"peak RSS {fmt_b(r['rss'])}"
                    + (f" (after login {fmt_b(r['rss_login'])}, STAT→exit {fmt_b(r['rss_rest'])})" if who == "popper" else "")
                    + f", spool now {fmt_b(r['spool_after'])}",
                    flush=True,
                )
    # What popper must write to files besides its lock files (a dotlock
    # holds one short line, "popper:HOST:PID"): see expectation().
    for name, _ in SCENARIOS:
        want = expectation(meta, name)["popper_data"]
        for r in results[name]["popper"]:
            if not (want <= r["data"] <= want + 1024):
                print(f"WARNING: popper {name} wrote {r['data']} bytes to files, expected {want} plus lock files", flush=True)

    elapsed = time.monotonic() - started + a.prep_seconds
    m = machine()
    tab = table(results, meta)
    print()
    print(tab)
    print()
    print(f"whole bench: {elapsed / 60:.1f} min")

    text = f"""# popper update benchmark (bench/update.sh)

Generated by `bench/update.sh`; see `bench/README.md` for what each column means.

* date: {m['date']}; popper commit {m['commit']}
* machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM, kernel {m['kernel']}
* /tmp (work dir): {m['tmp_fs']} on {m['tmp_dev']}
* mailbox: {n} messages, {meta['bytes']} bytes ({fmt_b(meta['bytes'])}), seed {meta['seed']},
  {big} messages of 100 kB or more (largest {fmt_b(max(lens))}); first message {lens[0]} B,
  last {lens[-1]} B; messages {'already carry' if meta['written_back'] else 'carry no'} `X-UIDL:`/`Status:` headers
* {a.repeats} runs of each scenario, popper and baseline interleaved; page cache
  {'synced and dropped before every run (cold cache)' if a.drop_caches else 'synced, not dropped (warm cache)'}
* baseline: plain 1 MiB read/write copies{', spool fsynced at the end of the update' if a.baseline_fsync else ', no fsync'}
* popper: release build, `update-status` on (the default), log to tmpfs; peak RSS of a
  session on a one-message mailbox (the fixed cost): {fixed}; the user's
  password hash: {a.hash_kind}
* whole bench: {elapsed / 60:.1f} min

{tab}

## Every run

{details(results)}
"""
    with open(a.out, "w") as f:
        f.write(text)
    print(f"written: {a.out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--work", required=True)
    r.add_argument("--log-dir", required=True)
    r.add_argument("--popper", required=True)
    r.add_argument("--user", required=True)
    r.add_argument("--password", required=True)
    r.add_argument("--messages", type=int, default=20000)
    r.add_argument("--size-mb", type=int, default=1000)
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--repeats", type=int, default=5)
    r.add_argument("--drop-caches", type=int, default=1)
    r.add_argument("--baseline-fsync", type=int, default=1)
    r.add_argument("--written-back", type=int, default=0)
    r.add_argument("--prep-seconds", type=float, default=0.0)
    r.add_argument("--out", required=True)
    b = sub.add_parser("baseline")
    b.add_argument("--spool", required=True)
    b.add_argument("--temp", required=True)
    b.add_argument("--keep", required=True, help="JSON list of [start, end) ranges of the spool to keep")
    b.add_argument("--fsync", type=int, default=1)
    a = ap.parse_args()

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        if a.cmd == "baseline":
            baseline_child(a)
        else:
            if a.repeats < 1 or a.messages < 2:
                raise BenchError("need at least 1 repeat and 2 messages")
            a.written_back = bool(a.written_back)
            run(a)
    except BenchError as e:
        print(f"\nbench/update: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("\nbench/update: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
