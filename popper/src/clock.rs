//! The clocks, read in one place (the protocol core never reads one).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The wall clock.
pub fn system_time() -> SystemTime {
    SystemTime::now()
}

/// The monotonic clock, for deadlines and waits.
pub fn monotonic() -> Instant {
    Instant::now()
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    since_epoch().as_secs() as i64
}

/// The wall clock since the epoch (zero for a clock set before it).
pub fn since_epoch() -> std::time::Duration {
    system_time().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// Days since the epoch (the unit of shadow's date fields).
pub fn today() -> i64 {
    now().div_euclid(86_400)
}

/// The current time as `YYYY-MM-DDTHH:MM:SSZ` (UTC), for trace files.
pub fn now_rfc3339() -> String {
    rfc3339(now())
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (proleptic Gregorian), after H. Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// CPU time this thread has used: what timing tests compare, since a
/// busy machine preempts a thread but does not add to its CPU time.
pub fn thread_cpu_time() -> std::time::Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map_or(std::time::Duration::ZERO, std::time::Duration::from)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(697170952), "1992-02-04T02:35:52Z");
        assert_eq!(super::rfc3339(1_795_849_546), "2026-11-28T07:05:46Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
