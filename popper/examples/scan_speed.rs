//! How fast the login scan reads a warm spool, in GB/s.
//!
//! `cargo run --release -p popper --example scan_speed [MB [MESSAGES [RUNS]]]`
//! (defaults: 200 MB, 10 000 messages, 15 runs). Writes a generated spool
//! to `$SCAN_SPOOL` (default `/tmp/popper-scan-speed-MB-MESSAGES.mbox`,
//! reused when it exists), reads it once to warm the page cache, then
//! times `scan::scan` on it and prints the best and median rate (wall
//! clock, and the median by CPU time, which other load disturbs less), and a
//! digest of every message's offsets, size, UID and read flag — the same
//! digest from two builds means they scanned the spool identically.
//!
//! The mix follows `bench/update.py`: mostly 2–50 KB prose messages
//! (30–76-byte lines, paragraphs, some `>` quotes), ~3 % 100 KB–5 MB with
//! a base64 attachment, the header of a delivered message (a three-line
//! `Received:`, `Date:`, `Subject:`, `Message-Id:`, ...) and, for one
//! message in four, `X-UIDL:` and `Status:` lines as a write-back leaves.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::Instant;

use popper::maildrop::mbox::scan::scan;

/// xorshift64*: deterministic, so every build scans the same spool.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "you", "that", "it", "he", "was", "for", "on", "are",
    "as", "with", "his", "they", "at", "be", "this", "have", "or", "one", "had", "by", "word",
    "but", "not", "what", "all", "were", "we", "when", "your", "can", "said", "there", "use",
    "each", "which", "she", "do", "how", "their", "if", "will", "up", "other", "about", "out",
    "many", "then", "them", "these", "so", "some", "her", "would", "make", "like", "him", "into",
    "time", "has", "look", "two", "more", "write", "go", "see", "number", "no", "way", "could",
    "people", "my", "than", "first", "water", "been", "call", "who", "oil", "its", "now", "find",
    "long", "down", "day", "did", "get", "come", "made", "may", "part", "quotient", "liquid",
    "motion", "steam", "teeth", "shell", "neck", "market", "degree",
];

fn prose_line(rng: &mut Rng, out: &mut Vec<u8>) {
    let width = 30 + rng.below(47) as usize;
    let start = out.len();
    if rng.unit() < 0.08 {
        out.extend_from_slice(b"> ");
    }
    let mut first = true;
    while out.len() - start < width {
        let w = WORDS[rng.below(WORDS.len() as u64) as usize];
        if !first {
            out.push(b' ');
        }
        if first {
            out.push(w.as_bytes()[0].to_ascii_uppercase());
            out.extend_from_slice(&w.as_bytes()[1..]);
            first = false;
        } else {
            out.extend_from_slice(w.as_bytes());
        }
    }
    out.extend_from_slice(b".\n");
}

fn prose(rng: &mut Rng, want: usize, out: &mut Vec<u8>) {
    let end = out.len() + want;
    let mut para = 0;
    while out.len() < end {
        if para == 0 {
            para = 3 + rng.below(10);
            out.push(b'\n');
        }
        para -= 1;
        prose_line(rng, out);
    }
}

fn base64(rng: &mut Rng, want: usize, out: &mut Vec<u8>) {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for _ in 0..want.div_ceil(77) {
        for _ in 0..76 {
            out.push(B64[rng.below(64) as usize]);
        }
        out.push(b'\n');
    }
}

fn asctime(t: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let day = t / 86_400;
    let s = t % 86_400;
    // Not a calendar: only the shape of the envelope's date matters here.
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        DAYS[(day % 7) as usize],
        MONTHS[((day / 30) % 12) as usize],
        1 + day % 28,
        s / 3600,
        s / 60 % 60,
        s % 60,
        1970 + day / 365
    )
}

fn generate(path: &str, total: u64, n: u64) -> std::io::Result<()> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let sizes: Vec<(u64, bool)> = (0..n)
        .map(|_| {
            if rng.unit() < 0.03 {
                ((100e3 * 50f64.powf(rng.unit())) as u64, true)
            } else {
                ((2e3 * 25f64.powf(rng.unit())) as u64, false)
            }
        })
        .collect();
    let small: u64 = sizes.iter().filter(|s| !s.1).map(|s| s.0).sum();
    let large: u64 = sizes.iter().filter(|s| s.1).map(|s| s.0).sum();
    let f = total.saturating_sub(small) as f64 / large.max(1) as f64;
    let mut w = BufWriter::with_capacity(8 << 20, File::create(path)?);
    let mut t = 723_275_602u64;
    let mut msg = Vec::new();
    for (i, &(size, big)) in sizes.iter().enumerate() {
        let want = if big {
            ((size as f64 * f) as u64).clamp(100_000, 5_000_000)
        } else {
            size
        } as usize;
        t += 30 + rng.below(9000);
        msg.clear();
        let sender = format!(
            "{}.{}@example.com",
            WORDS[rng.below(50) as usize],
            WORDS[rng.below(50) as usize]
        );
        let written_back = i % 4 == 0;
        writeln!(msg, "From {sender} {}", asctime(t))?;
        if written_back {
            writeln!(msg, "X-UIDL: {:016x}{:016x}", rng.next(), rng.next())?;
        }
        let hop = 1 + rng.below(250);
        writeln!(
            msg,
            "Received: from mx{hop}.example.net (mx{hop}.example.net [192.0.2.{hop}])\n\
             \tby mail.example.com (8.9.3/8.9.3) with ESMTP id {:010X}\n\
             \tfor <user@example.com>; Wed, 2 Dec 1992 05:53:22 +0000",
            rng.next() >> 24
        )?;
        writeln!(msg, "Date: Wed, 2 Dec 1992 05:53:22 +0000 ({t})")?;
        writeln!(msg, "From: Someone <{sender}>\nTo: user@example.com")?;
        writeln!(msg, "Subject: {} {}", WORDS[rng.below(100) as usize], i)?;
        writeln!(msg, "Message-Id: <{:016x}.{i}@example.com>", rng.next())?;
        writeln!(msg, "MIME-Version: 1.0")?;
        if big {
            writeln!(msg, "Content-Type: multipart/mixed; boundary=\"=_b{i}\"")?;
            if written_back {
                writeln!(msg, "Status: RO")?;
            }
            writeln!(
                msg,
                "\nThis is a multi-part message in MIME format.\n\n--=_b{i}"
            )?;
            writeln!(msg, "Content-Type: text/plain\n")?;
            let intro = 300 + rng.below(2700) as usize;
            prose(&mut rng, intro, &mut msg);
            writeln!(msg, "\n--=_b{i}\nContent-Type: application/octet-stream")?;
            writeln!(msg, "Content-Transfer-Encoding: base64\n")?;
            let left = want.saturating_sub(msg.len()).max(77);
            base64(&mut rng, left, &mut msg);
            writeln!(msg, "--=_b{i}--")?;
        } else {
            writeln!(msg, "Content-Type: text/plain; charset=us-ascii")?;
            if written_back {
                writeln!(msg, "Status: RO")?;
            }
            let left = want.saturating_sub(msg.len()).max(1);
            prose(&mut rng, left, &mut msg);
        }
        msg.push(b'\n');
        w.write_all(&msg)?;
    }
    w.flush()
}

/// Nanoseconds this thread has run on a CPU (`/proc/thread-self/schedstat`):
/// with other work sharing the CPUs, wall time says little, CPU time is
/// what the scan costs.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// FNV-1a over everything the scan found.
fn digest(s: &popper::maildrop::mbox::scan::Scan) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut add = |b: &[u8]| {
        for x in b {
            h = (h ^ u64::from(*x)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for m in &s.msgs {
        for v in [m.start, m.content, m.hdr_end, m.end, m.next, m.sep_hash] {
            add(&v.to_le_bytes());
        }
        add(&m.meta.size_without_uidl.to_le_bytes());
        add(m.meta.uid.as_bytes());
        add(&[u8::from(m.meta.seen)]);
    }
    h
}

fn main() -> std::io::Result<()> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap_or(0))
        .collect();
    let mb = args.first().copied().unwrap_or(200);
    let n = args.get(1).copied().unwrap_or(10_000);
    let runs = args.get(2).copied().unwrap_or(15).max(1);
    let path = std::env::var("SCAN_SPOOL")
        .unwrap_or_else(|_| format!("/tmp/popper-scan-speed-{mb}-{n}.mbox"));
    if std::fs::metadata(&path).is_err() {
        let part = format!("{path}.part");
        generate(&part, mb << 20, n)?;
        std::fs::rename(&part, &path)?;
    }
    let file = File::open(&path)?;
    let len = file.metadata()?.len();
    std::io::copy(&mut File::open(&path)?, &mut std::io::sink())?;
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    let mut result = None;
    for _ in 0..runs {
        let c = cpu_ns();
        let t = Instant::now();
        let s = scan(&file, len).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        times.push(t.elapsed().as_secs_f64());
        if let (Some(a), Some(b)) = (c, cpu_ns()) {
            cpu.push((b - a) as f64 / 1e9);
        }
        result = Some(s);
    }
    times.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    let gbs = |t: f64| len as f64 / t / 1e9;
    let s = result.unwrap_or_else(popper::maildrop::mbox::scan::Scan::empty);
    println!(
        "{len} bytes, {} messages: best {:.1} ms ({:.2} GB/s), median {:.1} ms ({:.2} GB/s), CPU time median {:.1} ms ({:.2} GB/s); digest {:016x}",
        s.msgs.len(),
        times[0] * 1e3,
        gbs(times[0]),
        times[times.len() / 2] * 1e3,
        gbs(times[times.len() / 2]),
        cpu.get(cpu.len() / 2).map_or(0.0, |t| t * 1e3),
        cpu.get(cpu.len() / 2).map_or(0.0, |t| gbs(*t)),
        digest(&s)
    );
    // What a first login adds for the scan index: every message's head
    // hash (heads.rs), one more pass over the headers only.
    let mut heads = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let h = popper::maildrop::mbox::heads::hashes(&file, len, &s.msgs, None)?;
        heads.push(t.elapsed().as_secs_f64());
        assert_eq!(h.len(), s.msgs.len());
    }
    heads.sort_by(f64::total_cmp);
    println!(
        "head hashes for the index: median {:.1} ms ({:.0}% of the median scan)",
        heads[heads.len() / 2] * 1e3,
        100.0 * heads[heads.len() / 2] / times[times.len() / 2]
    );
    Ok(())
}
