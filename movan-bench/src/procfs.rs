//! CPU time and memory of a process, from `/proc` (Linux).

use std::path::PathBuf;

/// CPU seconds (user + system) and resident memory of one process at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// User plus system CPU time so far, seconds.
    pub cpu_secs: f64,
    /// Resident set size now, bytes.
    pub rss_bytes: u64,
}

/// Reads `pid`'s `/proc` entries; `None` when the process is gone or `/proc` is not Linux's.
pub fn sample(pid: u32) -> Option<Sample> {
    let root = PathBuf::from(format!("/proc/{pid}"));
    let stat = std::fs::read_to_string(root.join("stat")).ok()?;
    let status = std::fs::read_to_string(root.join("status")).ok()?;
    Some(Sample { cpu_secs: cpu_secs(&stat, clock_ticks())?, rss_bytes: rss_bytes(&status)? })
}

/// The calling process.
pub fn sample_self() -> Option<Sample> {
    sample(std::process::id())
}

/// utime + stime from a `/proc/PID/stat` line, in seconds. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted after its last `)`.
pub fn cpu_secs(stat: &str, ticks_per_sec: u64) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at indexes 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / ticks_per_sec as f64)
}

/// `VmRSS` from `/proc/PID/status`, in bytes.
pub fn rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Clock ticks per second for `/proc` times. 100 on every Linux platform Movan targets (`USER_HZ`); `getconf`
/// would need libc.
fn clock_ticks() -> u64 {
    100
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_and_status() {
        let stat = "4242 (sync server) (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 8 0 100 1000 200";
        assert_eq!(cpu_secs(stat, 100), Some(3.0));
        let status = "Name:\tsync-server\nVmPeak:\t  20000 kB\nVmRSS:\t   14336 kB\nThreads:\t3\n";
        assert_eq!(rss_bytes(status), Some(14336 * 1024));
        assert_eq!(rss_bytes("Name: x\n"), None);
        assert_eq!(cpu_secs("garbage", 100), None);
    }

    #[test]
    fn reads_this_process() {
        let s = sample_self().expect("running on Linux");
        assert!(s.rss_bytes > 0);
        assert!(s.cpu_secs >= 0.0);
    }
}
