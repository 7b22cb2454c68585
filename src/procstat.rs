//! What a process uses, from /proc: CPU seconds, resident memory, threads and open files. For `/metrics` (this
//! process) and `callcast bench` (the server it measures).

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Usage {
    /// User + system CPU time so far.
    pub cpu_s: f64,
    pub rss_bytes: u64,
    pub threads: u64,
    pub open_files: u64,
}

/// `pid` is a number or `self`.
pub fn usage(pid: &str) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may contain spaces, so split after its closing parenthesis.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let pages: u64 = fields.get(21)?.parse().ok()?;
    // SAFETY: as above.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    let threads = fields.get(17)?.parse().ok()?;
    let open_files = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
    Some(Usage {
        cpu_s: ticks / hz,
        rss_bytes: pages * page_size,
        threads,
        open_files,
    })
}

/// Fraction of the whole machine's CPU time that was busy since `since` (from /proc/stat), and the new reading.
pub fn machine_busy(since: Option<(u64, u64)>) -> (f64, (u64, u64)) {
    let now = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let v: Vec<u64> = s
                .lines()
                .next()?
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            let busy = v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)?;
            Some((busy, busy + v.get(3)? + v.get(4)?))
        })
        .unwrap_or_default();
    let fraction = since.map_or(0.0, |(busy, total)| {
        let dt = now.1.saturating_sub(total);
        if dt == 0 {
            0.0
        } else {
            now.0.saturating_sub(busy) as f64 / dt as f64
        }
    });
    (fraction, now)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let u = super::usage("self").expect("/proc/self");
        assert!(u.rss_bytes > 0 && u.threads >= 1 && u.open_files >= 3, "{u:?}");
    }
}
