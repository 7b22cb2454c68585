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
    let mut node = std::process::Command::new("node")
        .arg(super::browser_script(name))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node (deploy/install-deps.sh installs it)");
    let lines = ChildLines::of(&mut node);
    let stdin = node.stdin.take().expect("piped stdin");
    (lines, stdin, super::KillOnDrop(node))
}
