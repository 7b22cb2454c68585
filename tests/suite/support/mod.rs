//! Real peers for end-to-end tests: callcast itself, nginx-rtmp, synthetic publishers, ffmpeg/ffprobe.
//! Every process is killed when its guard drops, so a failing test cleans up too.
#![allow(dead_code)]

pub mod audio;
pub mod broadcast;
pub mod child_lines;
pub mod events;
pub mod flv;
/// The same file as the unit tests': which GLib lines fail a test, and the in-process log handler.
#[path = "../../../src/glib_watch.rs"]
pub mod glib_watch;
pub mod gst_objects;
pub mod hls_ladder;
pub mod hls_low_latency;
pub mod janus;
pub mod media;
pub mod offers;
pub mod picture;
pub mod s3;
pub mod tls;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CALLCAST: &str = env!("CARGO_BIN_EXE_callcast");

/// Kills (SIGKILL) and reaps a child process on drop.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl KillOnDrop {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Sends a signal (e.g. "TERM") and waits for the process to exit, up to `timeout`.
    pub fn signal_and_wait(&mut self, signal: &str, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status();
        self.exit_within(timeout)
    }

    /// Waits for the process to exit, up to `timeout`; None if it still runs.
    pub fn exit_within(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

/// Polls `check` every 100 ms until it returns Some or `timeout` passes.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A port on 127.0.0.1 free for TCP and UDP, never the same twice in this process, outside the kernel's
/// ephemeral range and Janus' RTP ports (the bench's `free_port`). Servers we start ourselves that can report
/// the port they bound (`callcast serve --listen 127.0.0.1:0`) need none.
pub fn free_port() -> u16 {
    let port = callcast::tools::bench::peer::free_port();
    assert_ne!(port, 0, "no free port left");
    port
}

/// `callcast serve` on an ephemeral port with its own data dir.
pub struct Server {
    pub process: KillOnDrop,
    pub addr: SocketAddr,
    pub data_dir: tempfile::TempDir,
    pub log: std::path::PathBuf,
}

/// Starts `callcast serve` on an ephemeral port with `data_dir`, stderr appended to `log`.
fn spawn_server(
    data_dir: &std::path::Path,
    log: &std::path::Path,
    extra_args: &[&str],
    env: &[(&str, &str)],
) -> (KillOnDrop, SocketAddr) {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let mut child = Command::new(CALLCAST)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra_args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start callcast serve");
    let stdout = child.stdout.take().expect("stdout");
    let process = KillOnDrop(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read listen line");
    let addr = line
        .trim()
        .strip_prefix("callcast listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line from serve: {line:?}"))
        .parse()
        .expect("listen address");
    (process, addr)
}

impl Server {
    pub fn start(extra_args: &[&str]) -> Self {
        Self::start_with_env(extra_args, &[])
    }

    /// Starts the server with these environment variables set besides the test's own.
    pub fn start_with_env(extra_args: &[&str], env: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let log = data_dir.path().join("server.log");
        let (process, addr) = spawn_server(&data_dir.path().join("data"), &log, extra_args, env);
        Self {
            process,
            addr,
            data_dir,
            log,
        }
    }

    /// Starts a new server process on the same data dir (after the old one exited or was killed).
    pub fn restart(&mut self, extra_args: &[&str]) {
        let (process, addr) = spawn_server(&self.data_dir.path().join("data"), &self.log, extra_args, &[]);
        self.process = process;
        self.addr = addr;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn whip_url(&self, room: &str) -> String {
        self.url(&format!("/v1/rooms/{room}/whip"))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics naming any GLib CRITICAL or WARNING line the server (every process started on this log) printed.
    pub fn check_log(&self) {
        assert_no_glib_warnings("callcast serve", &self.log_text());
    }
}

/// Panics naming the GLib CRITICAL/WARNING lines in `output` (the stderr of the process `what`).
pub fn assert_no_glib_warnings(what: &str, output: &str) {
    let lines = glib_watch::glib_warnings(output);
    assert!(lines.is_empty(), "{what} printed GLib warnings:\n{}", lines.join("\n"));
}

impl Drop for Server {
    /// A failing test shows what the server said; a passing one fails if the server printed a GLib warning.
    fn drop(&mut self) {
        let log = self.log_text();
        let panicking = std::thread::panicking();
        if panicking || !glib_watch::glib_warnings(&log).is_empty() {
            let kept = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("failed-server.log");
            let _ = std::fs::write(&kept, &log);
            eprintln!("full server log: {}", kept.display());
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- callcast serve log (last lines) ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        // Not while unwinding: a second panic would abort the test binary and hide the first failure.
        if !panicking {
            assert_no_glib_warnings("callcast serve", &log);
        }
    }
}

/// A synthetic participant (`callcast publish`) with a silent tone.
pub fn publish(whip: &str, name: &str, pattern: &str) -> KillOnDrop {
    publish_with(whip, name, &["--pattern", pattern, "--tone", "0"], Stdio::null())
}

/// A synthetic participant with any further `callcast publish` flags; `stdin` for `--tone-on-stdin`.
pub fn publish_with(whip: &str, name: &str, flags: &[&str], stdin: Stdio) -> KillOnDrop {
    let child = Command::new(CALLCAST)
        .args(["publish", "--whip", whip, "--name", name])
        .args(flags)
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start callcast publish");
    KillOnDrop(child)
}

/// A synthetic participant publishing into a Janus room.
pub fn publish_janus(janus_url: &str, room: u64, pin: &str, name: &str, pattern: &str) -> KillOnDrop {
    let child = Command::new(CALLCAST)
        .args([
            "publish",
            "--janus",
            janus_url,
            "--room",
            &room.to_string(),
            "--pin",
            pin,
        ])
        .args(["--name", name, "--pattern", pattern, "--tone", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start callcast publish --janus");
    KillOnDrop(child)
}

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client")
}

pub fn get_json(url: &str) -> serde_json::Value {
    http().get(url).send().and_then(|r| r.json()).expect("GET json")
}

/// Runs the test `name` of module `module` (pass `module_path!()`) again inside a fresh network namespace that
/// has only loopback, and returns true (the caller then returns): a browser's WebRTC stack gathers every
/// interface it sees, and test traffic must never go beyond 127.0.0.1. Inside the namespace (second run) it
/// returns false, and leaves a mark that the outer run checks, so a filter that matches nothing cannot pass.
pub fn rerun_in_loopback_namespace(module: &str, name: &str) -> bool {
    if let Some(mark) = std::env::var_os("CALLCAST_TEST_NETNS") {
        std::fs::write(mark, name).expect("mark the rerun");
        return false;
    }
    // Test names are module paths without the crate's name.
    let module = module.split_once("::").map_or("", |(_, rest)| rest);
    let full_name = if module.is_empty() {
        name.to_string()
    } else {
        format!("{module}::{name}")
    };
    let mark = tempfile::NamedTempFile::new().expect("mark file");
    let exe = std::env::current_exe().expect("test binary");
    let status = Command::new("unshare")
        .args(["--net", "--", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(exe)
        .args([
            &full_name,
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "--include-ignored",
        ])
        .env("CALLCAST_TEST_NETNS", mark.path())
        .status()
        .expect("run unshare (util-linux) and ip (iproute2)");
    assert!(status.success(), "{full_name} failed inside its network namespace");
    let ran = std::fs::read_to_string(mark.path()).unwrap_or_default();
    assert_eq!(ran, name, "{full_name} did not run inside its network namespace");
    true
}

/// Path of a file under tests/browser (the Playwright scripts).
pub fn browser_script(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser")
        .join(name)
}
