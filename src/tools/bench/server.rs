//! The server under measurement (`callcast serve`, a child process on an ephemeral port with its own data dir)
//! and the synthetic participants that join its room, at a lower priority so they never starve it.

use super::janus::{JanusServer, ROOM, ROOM_PIN};
use super::peer::{wait_until, Peer};
use super::scenario::Via;
use anyhow::{Context, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub struct BenchServer {
    pub process: Peer,
    pub addr: String,
    pub dir: tempfile::TempDir,
    http: reqwest::blocking::Client,
}

impl BenchServer {
    pub fn start(exe: &Path) -> Result<Self> {
        let dir = tempfile::tempdir().context("temporary directory")?;
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let mut child = Command::new(exe)
            // No admission limit: the bench finds the machine's limit itself.
            .args(["serve", "--listen", "127.0.0.1:0", "--cpu-budget", "1000", "--data-dir"])
            .arg(dir.path().join("data"))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("starting callcast serve")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let process = Peer(child);
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("callcast listening on ")
            .with_context(|| format!("unexpected first line from serve: {line:?}"))?
            .to_string();
        Ok(Self {
            process,
            addr,
            dir,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }

    pub fn pid(&self) -> String {
        self.process.0.id().to_string()
    }

    pub fn whip_url(&self, room: &str) -> String {
        format!("{}/v1/rooms/{room}/whip", self.addr)
    }

    pub fn rtp_url(&self, room: &str) -> String {
        format!("{}/v1/rooms/{room}/rtp", self.addr)
    }

    pub fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let url = format!("{}{path}", self.addr);
        let request = match method {
            "POST" => self.http.post(&url),
            "PATCH" => self.http.patch(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.get(&url),
        };
        let request = match body {
            Some(b) => request.json(b),
            None => request,
        };
        let response = request.send().with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let value: Value = response.json().unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "{method} {path}: {status} {value}");
        Ok(value)
    }

    /// `POST`s a public grid broadcast of the built-in `room` with `video` settings and `outputs`; its id.
    pub fn start_grid(&self, room: &str, video: Value, outputs: Value) -> Result<String> {
        let created = self.send(
            "POST",
            "/v1/broadcasts",
            Some(&serde_json::json!({
                "source": {"kind": "room", "room": room},
                "layout": {"template": "grid"},
                "video": video,
                "public": true,
                "outputs": outputs,
            })),
        )?;
        Ok(created["id"].as_str().context("broadcast id")?.to_string())
    }

    /// Waits until `room` has `n` participants; returns them.
    pub fn wait_participants(&self, room: &str, n: usize, timeout: Duration) -> Result<Vec<Value>> {
        wait_until(&format!("{n} participants in {room}"), timeout, || {
            let room = self.send("GET", &format!("/v1/rooms/{room}"), None).ok()?;
            let list = room["participants"].as_array()?.clone();
            (list.len() >= n).then_some(list)
        })
    }

    pub fn playlist(&self, broadcast_id: &str) -> PathBuf {
        self.dir
            .path()
            .join(format!("data/broadcasts/{broadcast_id}/hls/index.m3u8"))
    }
}

/// `callcast publish` into `whip` with `flags`, at nice 10.
pub fn publisher(exe: &Path, whip: &str, name: &str, flags: &[&str]) -> Result<Peer> {
    spawn_publisher(exe, &["--whip", whip, "--name", name], flags)
}

/// `callcast publish` as plain RTP participants of a built-in room (`--rtp`) with `flags`, at nice 10.
pub fn rtp_publisher(exe: &Path, rtp: &str, name: &str, flags: &[&str]) -> Result<Peer> {
    spawn_publisher(exe, &["--rtp", rtp, "--name", name], flags)
}

/// `callcast publish` joining `room` of `server` over WHIP or plain RTP as `name` with `flags`, at nice 10, its
/// standard output piped: it prints there when it sends its join request (`publish::JOIN_REQUEST_LINE`).
pub fn joining_publisher(
    exe: &Path,
    server: &BenchServer,
    room: &str,
    via: Via,
    name: &str,
    flags: &[&str],
) -> Result<Peer> {
    let into = match via {
        Via::Whip => ["--whip".to_string(), server.whip_url(room)],
        Via::Rtp => ["--rtp".to_string(), server.rtp_url(room)],
    };
    spawn_publisher_to(exe, &[&into[0], &into[1], "--name", name], flags, Stdio::piped())
}

/// `callcast publish` into the bench's Janus room with `flags`, at nice 10.
pub fn janus_publisher(exe: &Path, janus: &JanusServer, name: &str, flags: &[&str]) -> Result<Peer> {
    let (url, room) = (janus.url(), ROOM.to_string());
    spawn_publisher(
        exe,
        &["--janus", &url, "--room", &room, "--pin", ROOM_PIN, "--name", name],
        flags,
    )
}

fn spawn_publisher(exe: &Path, into: &[&str], flags: &[&str]) -> Result<Peer> {
    spawn_publisher_to(exe, into, flags, Stdio::null())
}

fn spawn_publisher_to(exe: &Path, into: &[&str], flags: &[&str], stdout: Stdio) -> Result<Peer> {
    let mut command = Command::new(exe);
    command
        .arg("publish")
        .args(into)
        .args(flags)
        .stdout(stdout)
        .stderr(Stdio::null());
    // SAFETY: setpriority is async-signal-safe; it only lowers this child's priority.
    unsafe {
        command.pre_exec(|| {
            libc::setpriority(libc::PRIO_PROCESS, 0, 10);
            Ok(())
        });
    }
    Ok(Peer(command.spawn().context("starting callcast publish")?))
}
