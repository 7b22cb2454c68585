//! nginx with the RTMP module as a real ingest: accepts `rtmp://127.0.0.1:PORT/live/KEY` and records every
//! stream to `<dir>/KEY.flv`.

use super::peer::{free_port, wait_until, Peer};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

pub struct NginxRtmp {
    pub port: u16,
    pub dir: tempfile::TempDir,
    process: Option<Peer>,
}

/// nginx in the foreground with `conf` (written to `root/nginx.conf`), everything under `root`.
pub fn spawn_nginx(root: &std::path::Path, conf: &str) -> Result<Peer> {
    let conf_path = root.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let child = Command::new("nginx")
        .arg("-p")
        .arg(root)
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting nginx (deploy/install-deps.sh installs it)")?;
    Ok(Peer(child))
}

impl NginxRtmp {
    /// Starts on a free port (tests: panics when nginx cannot start).
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Self {
        Self::try_start_on(port).expect("start nginx-rtmp (deploy/install-deps.sh installs it)")
    }

    pub fn try_start_on(port: u16) -> Result<Self> {
        let dir = tempfile::tempdir().context("temporary directory for nginx")?;
        let mut nginx = Self {
            port,
            dir,
            process: None,
        };
        nginx.launch()?;
        Ok(nginx)
    }

    fn launch(&mut self) -> Result<()> {
        let root = self.dir.path();
        let record = root.join("record");
        std::fs::create_dir_all(&record)?;
        let conf = format!(
            "load_module {RTMP_MODULE};
daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 64; }}
rtmp {{
  server {{
    listen 127.0.0.1:{port};
    application live {{
      live on;
      record all;
      record_path {record};
      record_unique off;
    }}
  }}
}}
",
            root = root.display(),
            record = record.display(),
            port = self.port,
        );
        self.process = Some(spawn_nginx(root, &conf)?);
        let port = self.port;
        wait_until("nginx-rtmp to accept connections", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        })?;
        Ok(())
    }

    /// Kills the server (SIGKILL): connected publishers see the connection drop.
    pub fn kill(&mut self) {
        self.process.take();
    }

    /// Starts it again on the same port (recordings of the same key are overwritten).
    pub fn restart(&mut self) {
        self.try_restart().expect("restart nginx-rtmp");
    }

    pub fn try_restart(&mut self) -> Result<()> {
        self.process.take();
        self.launch()
    }

    pub fn url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.port)
    }

    pub fn recording(&self, key: &str) -> PathBuf {
        self.dir.path().join("record").join(format!("{key}.flv"))
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}
