//! A missing GStreamer element (its plugin not installed) stops `serve` at start with a message naming the
//! element, rather than a server that answers and fails each broadcast. The plugin is hidden by pointing
//! GStreamer at a copy of the system's plugin directory without it (and at a registry of its own, so the
//! machine's cached registry is left alone).

use crate::support::{assert_no_glib_warnings, wait_for, KillOnDrop, CALLCAST};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The system plugin directory of this machine's GStreamer (where `x264enc` comes from).
fn system_plugin_dir() -> std::path::PathBuf {
    let out = Command::new("gst-inspect-1.0")
        .arg("x264enc")
        .output()
        .expect("gst-inspect-1.0 (deploy/install-deps.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let file = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Filename"))
        .unwrap_or_else(|| panic!("no Filename for x264enc in:\n{text}"))
        .trim();
    std::path::Path::new(file).parent().expect("plugin dir").to_path_buf()
}

#[test]
fn serve_refuses_to_start_naming_a_missing_element() {
    let plugins = system_plugin_dir();
    let dir = tempfile::tempdir().expect("tempdir");
    let without_x264 = dir.path().join("plugins");
    std::fs::create_dir(&without_x264).expect("mkdir");
    let mut linked = 0;
    for entry in std::fs::read_dir(&plugins).expect("plugin dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name.ends_with(".so") && name != "libgstx264.so" {
            std::os::unix::fs::symlink(&path, without_x264.join(&name)).expect("symlink");
            linked += 1;
        }
    }
    assert!(linked > 50, "{linked} plugins in {}", plugins.display());

    let child = Command::new(CALLCAST)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("GST_PLUGIN_SYSTEM_PATH_1_0", &without_x264)
        .env("GST_REGISTRY_1_0", dir.path().join("registry.bin"))
        .env_remove("GST_PLUGIN_PATH_1_0")
        .env_remove("GST_PLUGIN_PATH")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("callcast serve");
    let mut serve = KillOnDrop(child);
    // The first line on stdout, or "" at its end (the process exited): a server that started would say where
    // it listens, and must not.
    let stdout = serve.0.stdout.take().expect("stdout");
    let (tx, first_line) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    // Scanning every plugin into a fresh registry takes a few seconds.
    let line = wait_for("serve to exit or print", Duration::from_secs(30), || {
        first_line.try_recv().ok()
    });
    assert_eq!(line, "", "serve started without x264enc");
    let status = wait_for("serve to exit", Duration::from_secs(5), || {
        serve.0.try_wait().expect("try_wait")
    });
    let mut stderr = String::new();
    serve
        .0
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    assert!(!status.success(), "{status}: {stderr}");
    let message = stderr
        .lines()
        .find(|l| l.contains("GStreamer elements missing"))
        .unwrap_or_else(|| panic!("no message naming the missing elements:\n{stderr}"));
    // Exactly the element whose plugin is gone, and how to get it.
    assert!(message.contains("missing: x264enc ("), "{message}");
    assert!(message.contains("deploy/install-deps.sh"), "{message}");
    assert_no_glib_warnings("callcast serve", &stderr);
}
