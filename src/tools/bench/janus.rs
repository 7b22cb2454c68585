//! A real Janus (Debian package) on loopback with a generated config, for the bench and the tests: HTTP API on
//! an ephemeral port, only the VideoRoom plugin, ICE on 127.0.0.1 (through `lo_shim.c`), one room from its
//! config file so it survives a restart.

use super::peer::{free_port, wait_until, Peer};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const PLUGINS: &str = "/usr/lib/x86_64-linux-gnu/janus/plugins";
const TRANSPORTS: &str = "/usr/lib/x86_64-linux-gnu/janus/transports";
const LO_SHIM: &str = include_str!("lo_shim.c");
/// The room in the config; it exists again after a restart.
pub const ROOM: u64 = 1234;
/// Not digits only: a short number turns up inside random ids and timestamps in the logs the tests search.
pub const ROOM_PIN: &str = "pin-4e7b-secret";
/// Where Janus' RTP ports come from: below the kernel's ephemeral range (32768 and up), which the server under
/// test's ICE takes its ports from, and above `peer::FREE_PORTS`.
pub const RTP_PORTS: std::ops::Range<u16> = 20_000..32_000;

pub struct JanusServer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    process: Option<Peer>,
}

/// `.so` files in `dir` other than `keep`, for Janus' `disable` lists.
fn others(dir: &str, keep: &str) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".so") && n != keep)
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.join(",")
}

fn build_shim(dir: &Path) -> Result<PathBuf> {
    let source = dir.join("lo_shim.c");
    std::fs::write(&source, LO_SHIM)?;
    let out = dir.join("lo_shim.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&out)
        .arg(&source)
        .arg("-ldl")
        .status()
        .context("run cc (build-essential)")?;
    anyhow::ensure!(status.success(), "building the loopback shim failed");
    Ok(out)
}

impl JanusServer {
    pub fn start() -> Result<Self> {
        let dir = tempfile::tempdir().context("temporary directory for Janus")?;
        let mut janus = Self {
            port: free_port(),
            dir,
            process: None,
        };
        janus.write_config()?;
        janus.launch()?;
        Ok(janus)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/janus", self.port)
    }

    /// Kills Janus (SIGKILL) and starts it again on the same port with the same config.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.start_again()
    }

    /// Kills Janus (SIGKILL) and leaves it down until `start_again`.
    pub fn kill(&mut self) {
        self.process = None;
    }

    /// Starts Janus again (after `kill`) on the same port with the same config.
    pub fn start_again(&mut self) -> Result<()> {
        self.launch()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("janus.log")).unwrap_or_default()
    }

    fn write_config(&self) -> Result<()> {
        let d = self.dir.path();
        // One block of 100 of RTP_PORTS, by the HTTP port: Janus runs started side by side take different ones.
        let blocks = (RTP_PORTS.end - RTP_PORTS.start) / 100;
        let rtp_low = RTP_PORTS.start + (self.port % blocks) * 100;
        std::fs::write(
            d.join("janus.jcfg"),
            format!(
                r#"general: {{
  configs_folder = "{cfg}"
  plugins_folder = "{PLUGINS}"
  transports_folder = "{TRANSPORTS}"
  events_folder = "/nonexistent"
  loggers_folder = "/nonexistent"
  debug_level = 4
  session_timeout = 10
  log_to_stdout = true
}}
media: {{
  rtp_port_range = "{rtp_low}-{rtp_high}"
}}
nat: {{
  nice_debug = false
  ignore_mdns = true
  ice_enforce_list = "lo"
}}
plugins: {{
  disable = "{plugins}"
}}
transports: {{
  disable = "{transports}"
}}
events: {{
  broadcast = false
}}
"#,
                cfg = d.display(),
                rtp_high = rtp_low + 99,
                plugins = others(PLUGINS, "libjanus_videoroom.so"),
                transports = others(TRANSPORTS, "libjanus_http.so"),
            ),
        )?;
        std::fs::write(
            d.join("janus.transport.http.jcfg"),
            format!(
                "general: {{\n  json = \"plain\"\n  base_path = \"/janus\"\n  http = true\n  port = {}\n  ip = \"127.0.0.1\"\n  https = false\n}}\nadmin: {{\n  admin_http = false\n}}\n",
                self.port
            ),
        )?;
        std::fs::write(
            d.join("janus.plugin.videoroom.jcfg"),
            format!(
                "general: {{\n}}\nroom-{ROOM}: {{\n  description = \"callcast test\"\n  publishers = 16\n  pin = \"{ROOM_PIN}\"\n  bitrate = 3000000\n  videocodec = \"vp8,h264\"\n  audiocodec = \"opus\"\n}}\n"
            ),
        )?;
        Ok(())
    }

    fn launch(&mut self) -> Result<()> {
        let d = self.dir.path();
        let shim = if d.join("lo_shim.so").exists() {
            d.join("lo_shim.so")
        } else {
            build_shim(d)?
        };
        let log = std::fs::File::create(d.join("janus.log"))?;
        let child = Command::new("janus")
            .arg("-F")
            .arg(d)
            .arg("-C")
            .arg(d.join("janus.jcfg"))
            .env("LD_PRELOAD", &shim)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start janus (deploy/install-deps.sh installs it)")?;
        self.process = Some(Peer(child));
        let info = format!("{}/info", self.url());
        wait_until("Janus to answer /janus/info", Duration::from_secs(15), || {
            reqwest::blocking::get(&info).ok().filter(|r| r.status().is_success())
        })?;
        Ok(())
    }

    /// `(display, publisher)` of everyone Janus lists in the room, through a throw-away session.
    pub fn list_participants(&self) -> Result<Vec<(String, bool)>> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()?;
        let post = |path: &str, body: serde_json::Value| -> Result<serde_json::Value> {
            Ok(client
                .post(format!("{}{path}", self.url()))
                .json(&body)
                .send()?
                .json()?)
        };
        let session = post("", serde_json::json!({"janus": "create", "transaction": "t"}))?["data"]["id"]
            .as_u64()
            .context("Janus session")?;
        let handle = post(
            &format!("/{session}"),
            serde_json::json!({"janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": "t"}),
        )?["data"]["id"]
            .as_u64()
            .context("Janus handle")?;
        let reply = post(
            &format!("/{session}/{handle}"),
            serde_json::json!({"janus": "message", "transaction": "t",
                "body": {"request": "listparticipants", "room": ROOM}}),
        )?;
        let _ = post(
            &format!("/{session}"),
            serde_json::json!({"janus": "destroy", "transaction": "t"}),
        );
        Ok(reply["plugindata"]["data"]["participants"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|p| {
                        (
                            p["display"].as_str().unwrap_or("").to_string(),
                            p["publisher"].as_bool().unwrap_or(false),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}
