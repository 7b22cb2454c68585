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

/// CPU seconds (user + system) of each of `pid`'s threads so far, by thread name (names repeat).
pub fn threads_cpu(pid: &str) -> Vec<(String, f64)> {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.ok()?.path().join("stat")).ok()?;
            let (head, tail) = stat.rsplit_once(')')?;
            let name = head.split_once('(')?.1.to_string();
            let fields: Vec<&str> = tail.split_whitespace().collect();
            let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
            Some((name, ticks / hz))
        })
        .collect()
}

/// Cores each kind of thread of `pid` used between two `threads_cpu` readings `secs` apart, largest first,
/// leaving out kinds under half a percent of a core. A kind is a thread name without the element's number
/// (`queue3:src` and `queue12:src` are `queue:src`). Threads that ended in between lose what they had used, so
/// a kind can read low, never high.
pub fn cores_by_thread_name(before: &[(String, f64)], after: &[(String, f64)], secs: f64) -> Vec<(String, f64)> {
    let sum = |readings: &[(String, f64)]| {
        let mut by_kind = std::collections::HashMap::<String, f64>::new();
        for (name, cpu) in readings {
            *by_kind.entry(thread_kind(name)).or_default() += cpu;
        }
        by_kind
    };
    let before = sum(before);
    let mut cores: Vec<(String, f64)> = sum(after)
        .into_iter()
        .map(|(name, cpu)| {
            let used = (cpu - before.get(&name).copied().unwrap_or(0.0)).max(0.0);
            (name, (used / secs * 1000.0).round() / 1000.0)
        })
        .filter(|(_, cores)| *cores >= 0.005)
        .collect();
    cores.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    cores
}

/// `name` without the number GStreamer gives each element: `compositor1:src` -> `compositor:src`, `task9` -> `task`.
fn thread_kind(name: &str) -> String {
    let (element, pad) = name.split_once(':').map_or((name, None), |(e, p)| (e, Some(p)));
    let element = element.trim_end_matches(|c: char| c.is_ascii_digit());
    pad.map_or_else(|| element.to_string(), |pad| format!("{element}:{pad}"))
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
    /// Kills and reaps the spinning child even when an assertion fails (its own guard: the product never imports
    /// the bench's `Peer` from the tooling).
    struct KillOnDrop(std::process::Child);

    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn reads_this_process() {
        let u = super::usage("self").expect("/proc/self");
        assert!(u.rss_bytes > 0 && u.threads >= 1 && u.open_files >= 3, "{u:?}");
    }

    /// Nanoseconds `pid` has run on a CPU, from the scheduler's own account (`/proc/<pid>/schedstat`), which
    /// `usage` does not read (it reads `stat`'s clock ticks): an independent measure of the same time.
    fn scheduled_s(pid: &str) -> f64 {
        let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).expect("schedstat");
        let ns: u64 = text
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .expect("run time");
        ns as f64 / 1e9
    }

    /// A child that spins for the whole window: the CPU time read is the scheduler's to within 5% (or 30 ms) (on a busy
    /// machine the child gets less than a core, so the figure is checked against the kernel's, not against one).
    #[test]
    fn a_busy_child_measures_its_cpu_time() {
        let child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("sh");
        let pid = child.id().to_string();
        let guard = KillOnDrop(child);
        let before = (super::usage(&pid).expect("usage").cpu_s, scheduled_s(&pid));
        // The measuring window itself.
        std::thread::sleep(std::time::Duration::from_secs(2));
        let after = (super::usage(&pid).expect("usage").cpu_s, scheduled_s(&pid));
        drop(guard);
        let (measured, scheduled) = (after.0 - before.0, after.1 - before.1);
        assert!(scheduled > 0.2, "the child ran {scheduled:.3} s of 2 s");
        // `stat` counts in 10 ms ticks, utime and stime each truncated: 30 ms or 5%, whichever is more.
        assert!(
            (measured - scheduled).abs() <= (0.05 * scheduled).max(0.03),
            "measured {measured:.3} s of CPU; the scheduler counted {scheduled:.3} s"
        );
        let idle = super::usage("self").expect("this process");
        assert!(idle.threads >= 1 && idle.rss_bytes > 0);
    }

    /// Threads of one kind are summed, a thread that appeared in between counts from zero, kinds under half a
    /// percent of a core are left out, and the largest comes first.
    #[test]
    fn cores_by_thread_name_sums_kinds() {
        let reading = |r: &[(&str, f64)]| r.iter().map(|(n, c)| (n.to_string(), *c)).collect::<Vec<_>>();
        let before = reading(&[
            ("queue1:src", 1.0),
            ("queue2:src", 2.0),
            ("x264enc0:src", 5.0),
            ("idle", 1.0),
        ]);
        let after = reading(&[
            ("queue1:src", 2.0),
            ("queue2:src", 3.0),
            ("queue12:src", 0.5),
            ("x264enc0:src", 9.0),
            ("idle", 1.001),
        ]);
        let cores = super::cores_by_thread_name(&before, &after, 10.0);
        assert_eq!(
            cores,
            vec![("x264enc:src".to_string(), 0.4), ("queue:src".to_string(), 0.25)]
        );
        assert_eq!(super::thread_kind("task9"), "task");
        assert_eq!(super::thread_kind("video-p_4ff465a"), "video-p_4ff465a");
    }
}
