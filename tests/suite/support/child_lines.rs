//! A child process's standard output read line by line on a thread, so a test can wait for a line with a
//! deadline (and for another one later).

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct ChildLines(mpsc::Receiver<String>);

impl ChildLines {
    /// Takes `child`'s piped stdout.
    pub fn of(child: &mut std::process::Child) -> Self {
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self(rx)
    }

    /// Reads lines until `pick` returns Some; panics at the deadline or when the child closed its output.
    pub fn until<T>(&self, timeout: Duration, mut pick: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.0.recv_timeout(left).expect("expected output before the deadline");
            if let Some(found) = pick(&line) {
                return found;
            }
        }
    }
}

/// A script of tests/browser run by node with `args`, its output read by line, its input piped; killed on drop
/// (the last of the three, which the caller keeps for as long as the script is to run).
pub fn node_script(name: &str, args: &[&std::ffi::OsStr]) -> (ChildLines, std::process::ChildStdin, super::KillOnDrop) {
    let (lines, stdin, node) = spawn_node(name, args);
    (lines, stdin, super::KillOnDrop(node))
}

fn spawn_node(name: &str, args: &[&std::ffi::OsStr]) -> (ChildLines, std::process::ChildStdin, std::process::Child) {
    let mut node = std::process::Command::new("node")
        .arg(super::browser_script(name))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node (deploy/install-deps.sh installs it)");
    let lines = ChildLines::of(&mut node);
    let stdin = node.stdin.take().expect("piped stdin");
    (lines, stdin, node)
}

/// A node script whose processes (node and every process under it: playwright starts Chromium in a process
/// group of its own) a test can freeze at once (`freeze`, SIGSTOP): a viewer that stays connected but takes
/// nothing. All of them are killed on drop (SIGKILL ends stopped processes too).
pub struct NodeTree(std::process::Child);

impl NodeTree {
    pub fn start(name: &str, args: &[&std::ffi::OsStr]) -> (ChildLines, std::process::ChildStdin, Self) {
        let (lines, stdin, node) = spawn_node(name, args);
        (lines, stdin, Self(node))
    }

    /// SIGSTOP to node and everything under it: their sockets stay open and nothing reads them.
    pub fn freeze(&self) {
        let stopped = self.signal(libc::SIGSTOP);
        assert!(
            stopped > 1,
            "SIGSTOP reached {stopped} processes: node and its Chromium expected"
        );
    }

    /// Sends `signal` to node and every descendant (found in /proc); how many took it.
    fn signal(&self, signal: libc::c_int) -> usize {
        let mut tree = vec![self.0.id() as libc::pid_t];
        let mut i = 0;
        while i < tree.len() {
            tree.extend(children(tree[i]));
            i += 1;
        }
        // SAFETY: kill(2) sends a signal; no memory is shared.
        tree.iter()
            .filter(|pid| unsafe { libc::kill(**pid, signal) } == 0)
            .count()
    }
}

/// The processes whose parent is `pid`.
fn children(pid: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|child| {
            // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
            std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<libc::pid_t>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

impl Drop for NodeTree {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.0.wait();
    }
}
