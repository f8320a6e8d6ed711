//! The process gauges every Prometheus client library exports (`process_*`, read from
//! `/proc/self` as the Go and Rust clients do), and `kinesin_build_info`.
//!
//! Read at scrape time only; nothing here runs on the request path. Where `/proc` is missing
//! (not Linux) the `process_*` families are left out.

use std::fmt::Write as _;
use std::sync::OnceLock;

/// The version and build of this binary, as `kinesin_build_info`'s labels.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit built (12 hex digits), or `unknown` (set by build.rs; `KINESIN_REVISION` in
/// the build environment overrides it, e.g. for builds without `.git`).
pub const REVISION: &str = env!("KINESIN_REVISION");
/// `rustc --version`'s version number, or `unknown`.
pub const RUSTC_VERSION: &str = env!("KINESIN_RUSTC_VERSION");

/// A reading of `/proc/self`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub threads: u64,
    pub open_fds: u64,
    /// The soft `RLIMIT_NOFILE`; `None` when unlimited.
    pub max_fds: Option<u64>,
    pub start_time_seconds: f64,
}

fn sysconf(name: libc::c_int, default: i64) -> i64 {
    // SAFETY: sysconf only reads a configuration value.
    let v = unsafe { libc::sysconf(name) };
    if v > 0 {
        v as i64
    } else {
        default
    }
}

/// The fields of `/proc/[pid]/stat` after the command name, from field 3 (`state`) on.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    // The command name is in parentheses and may itself contain spaces or ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().collect())
}

/// Parses `/proc/self/stat` (and `/proc/stat`'s `btime`) into the CPU, memory, thread and
/// start-time values; `ticks` is `_SC_CLK_TCK`, `page` the page size.
fn parse_stat(stat: &str, proc_stat: &str, ticks: f64, page: u64) -> Option<(f64, u64, u64, u64, f64)> {
    let f = stat_fields(stat)?;
    // Field n of proc(5) is f[n - 3].
    let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let cpu = (num(14)? + num(15)?) as f64 / ticks;
    let threads = num(20)?;
    let start_ticks = num(22)?;
    let vsize = num(23)?;
    let rss = num(24)? * page;
    let btime = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<u64>().ok())?;
    Some((cpu, rss, vsize, threads, btime as f64 + start_ticks as f64 / ticks))
}

/// Reads `/proc/self`; `None` where it is missing or unreadable.
pub fn read() -> Option<ProcessStats> {
    let ticks = sysconf(libc::_SC_CLK_TCK, 100) as f64;
    let page = sysconf(libc::_SC_PAGESIZE, 4096) as u64;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The boot time never changes, and /proc/stat is long on big machines: read it once.
    static BTIME: OnceLock<String> = OnceLock::new();
    let proc_stat = BTIME.get_or_init(|| {
        std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("btime ")).map(str::to_string))
            .unwrap_or_default()
    });
    let (cpu_seconds, resident_bytes, virtual_bytes, threads, start_time_seconds) =
        parse_stat(&stat, proc_stat, ticks, page)?;
    // Like the client libraries, this counts the descriptor used to list the directory too.
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every target
    let max_fds = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0
        && limit.rlim_cur != libc::RLIM_INFINITY
    {
        Some(limit.rlim_cur as u64)
    } else {
        None
    };
    Some(ProcessStats {
        cpu_seconds,
        resident_bytes,
        virtual_bytes,
        threads,
        open_fds,
        max_fds,
        start_time_seconds,
    })
}

fn family(out: &mut String, name: &str, kind: &str, help: &str, value: &dyn std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

/// Appends the `process_*` families and `kinesin_build_info` to `out`.
pub fn render(out: &mut String) {
    if let Some(p) = read() {
        family(
            out,
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            &p.cpu_seconds,
        );
        family(
            out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            &p.resident_bytes,
        );
        family(
            out,
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            &p.virtual_bytes,
        );
        family(out, "process_threads", "gauge", "Number of OS threads in the process.", &p.threads);
        family(out, "process_open_fds", "gauge", "Number of open file descriptors.", &p.open_fds);
        let max: &dyn std::fmt::Display = match &p.max_fds {
            Some(n) => n,
            None => &"+Inf",
        };
        family(
            out,
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors (the soft RLIMIT_NOFILE).",
            max,
        );
        family(
            out,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            &p.start_time_seconds,
        );
    }
    let _ = writeln!(
        out,
        "# HELP kinesin_build_info The running build: version, git revision and rustc version (always 1)."
    );
    let _ = writeln!(out, "# TYPE kinesin_build_info gauge");
    let _ = writeln!(
        out,
        "kinesin_build_info{{version=\"{VERSION}\",revision=\"{REVISION}\",rustc_version=\"{RUSTC_VERSION}\"}} 1"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_an_awkward_command_name() {
        // proc(5) fields 1..24: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
        // majflt cmajflt utime stime cutime cstime priority nice num_threads itrealvalue
        // starttime vsize rss ...
        let stat = "4242 (kin esin) x) S 1 2 3 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 7 0 12345 987654 321 18446744073709551615";
        let (cpu, rss, vsize, threads, start) =
            parse_stat(stat, "cpu  1 2 3\nbtime 1700000000\nprocesses 9\n", 100.0, 4096).unwrap();
        assert_eq!(cpu, 4.0);
        assert_eq!(rss, 321 * 4096);
        assert_eq!(vsize, 987654);
        assert_eq!(threads, 7);
        assert_eq!(start, 1_700_000_123.45);
        assert!(parse_stat("garbage", "btime 1", 100.0, 4096).is_none());
        assert!(parse_stat(stat, "no boot time", 100.0, 4096).is_none());
    }

    #[test]
    fn reads_this_process() {
        let Some(p) = read() else { return }; // not Linux
        assert!(p.resident_bytes > 1 << 20, "{p:?}");
        assert!(p.virtual_bytes >= p.resident_bytes);
        assert!(p.threads >= 1);
        assert!(p.open_fds >= 3);
        assert!(p.max_fds.is_none_or(|m| m >= p.open_fds));
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!(p.start_time_seconds <= now + 1.0 && p.start_time_seconds > now - 86_400.0, "{p:?}");
        let mut out = String::new();
        render(&mut out);
        assert!(out.contains("\nprocess_resident_memory_bytes "), "{out}");
        assert!(out.contains(&format!("kinesin_build_info{{version=\"{VERSION}\",")));
    }
}
