//! A real S3-compatible server on loopback: moto's server mode (`moto_server`, from PyPI; installed by
//! deploy/install-deps.sh), reached through a small TCP relay that can take storage down (every connection cut,
//! new ones closed at once) and bring it back with its objects intact. Killed on drop.

use super::{wait_for, KillOnDrop};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An Authorization header moto takes for a signed request (it checks no signature unless asked to).
const READER: &str =
    "AWS4-HMAC-SHA256 Credential=AKIDTESTREADER/20261130/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00";

/// Where deploy/install-deps.sh puts moto when the machine has none of its own.
const VENV_MOTO: &str = "/opt/callcast-moto/bin/moto_server";

pub struct S3 {
    _moto: KillOnDrop,
    moto_port: u16,
    relay: Relay,
    pub bucket: String,
}

impl S3 {
    /// Starts moto and creates `bucket`. Fails (never skips) without moto.
    pub fn start(bucket: &str) -> Self {
        Self::spawn(bucket, &[])
    }

    /// Like `start`, but checking credentials after the bucket is made: moto knows no access key then, so
    /// every request callcast signs is refused as `InvalidAccessKeyId` (wrong credentials).
    pub fn start_checking_credentials(bucket: &str) -> Self {
        Self::spawn(bucket, &[("INITIAL_NO_AUTH_ACTION_COUNT", "1")])
    }

    fn spawn(bucket: &str, env: &[(&str, &str)]) -> Self {
        let program = if std::path::Path::new(VENV_MOTO).exists() {
            VENV_MOTO.to_string()
        } else {
            "moto_server".to_string()
        };
        let moto_port = super::free_port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &moto_port.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program} ({e}): run deploy/install-deps.sh"));
        let moto = KillOnDrop(child);
        let client = super::http();
        let create = format!("http://127.0.0.1:{moto_port}/{bucket}");
        // moto imports for a few seconds before it listens.
        wait_for("moto to create the bucket", Duration::from_secs(40), || {
            client
                .put(&create)
                .send()
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        });
        Self {
            _moto: moto,
            moto_port,
            relay: Relay::start(moto_port),
            bucket: bucket.to_string(),
        }
    }

    /// The endpoint callcast is given (the relay in front of moto).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.relay.port)
    }

    /// A config file for `callcast serve --config` pointing at this server's `bucket` under `prefix`.
    pub fn config_file(&self, dir: &std::path::Path, bucket: &str, prefix: &str) -> std::path::PathBuf {
        let path = dir.join(format!("storage-{bucket}.toml"));
        let text = format!(
            "storage_url = \"s3://{bucket}/{prefix}\"\nstorage_endpoint = \"{}\"\n\
             storage_access_key_id = \"AKIDTESTSTORAGE\"\nstorage_secret_access_key = \"sekrit-storage-key\"\n",
            self.endpoint()
        );
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// Every key under `prefix` with its size (read from moto directly, not through the relay).
    pub fn list(&self, prefix: &str) -> Vec<(String, u64)> {
        let url = format!(
            "http://127.0.0.1:{}/{}?list-type=2&max-keys=10000&prefix={prefix}",
            self.moto_port, self.bucket
        );
        let text = super::http()
            .get(url)
            .send()
            .and_then(|r| r.text())
            .expect("list objects");
        let mut objects = Vec::new();
        for contents in text.split("<Contents>").skip(1) {
            let field = |name: &str| {
                contents
                    .split(&format!("<{name}>"))
                    .nth(1)
                    .and_then(|s| s.split(&format!("</{name}>")).next())
                    .unwrap_or_default()
                    .to_string()
            };
            objects.push((field("Key"), field("Size").parse().unwrap_or(0)));
        }
        objects.sort();
        objects
    }

    pub fn get(&self, key: &str) -> Vec<u8> {
        let url = format!("http://127.0.0.1:{}/{}/{key}", self.moto_port, self.bucket);
        // moto checks no signature, but objects stored by a signed request are not readable anonymously.
        let response = super::http()
            .get(url)
            .header("Authorization", READER)
            .send()
            .expect("get object");
        let status = response.status();
        assert!(status.is_success(), "GET {key}: {status}; stored: {:?}", self.list(""));
        response.bytes().expect("object body").to_vec()
    }

    /// The `Content-Type` and `Cache-Control` `key` is stored with (a HEAD on moto directly).
    pub fn head(&self, key: &str) -> (String, String) {
        let url = format!("http://127.0.0.1:{}/{}/{key}", self.moto_port, self.bucket);
        let response = super::http()
            .head(url)
            .header("Authorization", READER)
            .send()
            .expect("head object");
        assert!(response.status().is_success(), "HEAD {key}: {}", response.status());
        let header = |name: &str| {
            let value = response.headers().get(name).and_then(|v| v.to_str().ok());
            value.unwrap_or("(none)").to_string()
        };
        (header("content-type"), header("cache-control"))
    }

    /// Starts a multipart upload of `key` and leaves it unfinished (as a server killed mid-upload does).
    pub fn start_multipart(&self, key: &str) {
        let url = format!("http://127.0.0.1:{}/{}/{key}?uploads", self.moto_port, self.bucket);
        let response = super::http()
            .post(url)
            .header("Authorization", READER)
            .send()
            .expect("initiate multipart upload");
        assert!(
            response.status().is_success(),
            "POST {key}?uploads: {}",
            response.status()
        );
    }

    /// The keys of the multipart uploads in progress, sorted.
    pub fn multipart_uploads(&self) -> Vec<String> {
        let url = format!("http://127.0.0.1:{}/{}?uploads", self.moto_port, self.bucket);
        let text = super::http()
            .get(url)
            .header("Authorization", READER)
            .send()
            .and_then(|r| r.text())
            .expect("list multipart uploads");
        let mut keys: Vec<String> = text
            .split("<Upload>")
            .skip(1)
            .filter_map(|u| u.split("<Key>").nth(1)?.split("</Key>").next().map(str::to_string))
            .collect();
        keys.sort();
        keys
    }

    /// Storage goes down: connections in flight are cut, new ones closed at once, until `up`.
    pub fn down(&self) {
        self.relay.set_up(false);
    }

    pub fn up(&self) {
        self.relay.set_up(true);
    }
}

/// Forwards TCP connections from its own port to moto's while up.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay listener");
        let port = listener.local_addr().expect("relay address").port();
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up2, open2) = (up.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let mut open = open2.lock().unwrap();
                open.retain(|s| s.peer_addr().is_ok());
                open.extend([client.try_clone(), server.try_clone()].into_iter().flatten());
                drop(open);
                pump(client.try_clone(), server.try_clone());
                pump(server.try_clone(), client.try_clone());
            }
        });
        Self { port, up, open }
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            for stream in self.open.lock().unwrap().drain(..) {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
}

/// Copies `from` into `to` on a thread of its own until either side closes.
fn pump(from: std::io::Result<TcpStream>, to: std::io::Result<TcpStream>) {
    let (Ok(mut from), Ok(mut to)) = (from, to) else { return };
    std::thread::spawn(move || {
        let mut buffer = [0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buffer) {
            if n == 0 || to.write_all(&buffer[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
