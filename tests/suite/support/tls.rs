//! A TLS terminator in front of nginx-rtmp (nginx `stream` module), with a certificate authority made by the
//! test: `rtmps://localhost:PORT/live/KEY` reaches the same ingest as `rtmp://127.0.0.1:RTMP_PORT/live/KEY`.

use super::{free_port, wait_for};
use callcast::tools::bench::peer::Peer;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (deploy/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and two server certificates it signed: one for `localhost`, one for another host.
pub struct TestCa {
    pub dir: tempfile::TempDir,
}

impl TestCa {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=callcast test CA"];
        ca.extend(ec);
        ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
        openssl(d, &ca);
        for (name, san) in [
            ("localhost", "DNS:localhost,IP:127.0.0.1"),
            ("wrong", "DNS:wrong.example"),
        ] {
            std::fs::write(d.join(format!("{name}.ext")), format!("subjectAltName={san}\n")).expect("ext file");
            let (key, csr, pem, ext) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
                format!("{name}.ext"),
            );
            let mut req = vec!["req", "-subj"];
            let subject = format!("/CN={name}");
            req.push(&subject);
            req.extend(ec);
            req.extend(["-keyout", &key, "-out", &csr]);
            openssl(d, &req);
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                    "-out",
                    &pem,
                ],
            );
        }
        Self { dir }
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn cert(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join(format!("{name}.pem")),
            self.dir.path().join(format!("{name}.key")),
        )
    }
}

/// nginx terminating TLS on two ports, both forwarding to `rtmp_port`: `good_port` shows the `localhost`
/// certificate, `wrong_port` one for another host.
pub struct TlsTerminator {
    pub good_port: u16,
    pub wrong_port: u16,
    dir: tempfile::TempDir,
    _process: Peer,
}

impl TlsTerminator {
    pub fn start(ca: &TestCa, rtmp_port: u16) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (good_port, wrong_port) = (free_port(), free_port());
        let server = |port: u16, name: &str| {
            let (cert, key) = ca.cert(name);
            format!(
                "  server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {}; ssl_certificate_key {}; \
                 proxy_pass 127.0.0.1:{rtmp_port}; }}\n",
                cert.display(),
                key.display()
            )
        };
        let root = dir.path();
        let conf = format!(
            "load_module {STREAM_MODULE};\ndaemon off;\nmaster_process off;\npid {root}/nginx.pid;\n\
             error_log {root}/error.log info;\nevents {{ worker_connections 64; }}\nstream {{\n{}{}}}\n",
            server(good_port, "localhost"),
            server(wrong_port, "wrong"),
            root = root.display(),
        );
        let process = callcast::tools::bench::ingest::spawn_nginx(root, &conf).expect("start nginx");
        for port in [good_port, wrong_port] {
            wait_for("the TLS terminator", Duration::from_secs(10), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).ok()
            });
        }
        Self {
            good_port,
            wrong_port,
            dir,
            _process: process,
        }
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}
