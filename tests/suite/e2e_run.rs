//! `callcast run job.json`: one broadcast in the foreground, as a container or job scheduler runs it.

use crate::support::{assert_no_glib_warnings, wait_for, KillOnDrop, CALLCAST};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const JOB: &str = r#"{"source": {"kind": "room", "room": "job"},
  "video": {"width": 320, "height": 180, "keyframe_interval_s": 1},
  "outputs": [{"kind": "hls", "segment_seconds": 1}]}"#;

fn run(dir: &Path, job: &str, file: &str, extra: &[&str]) -> Command {
    let path = dir.join(file);
    std::fs::write(&path, job).expect("job file");
    let mut command = Command::new(CALLCAST);
    command
        .arg("run")
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--report")
        .arg(dir.join("report.json"))
        .args(extra)
        .stdin(Stdio::null());
    command
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn report(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("report")).expect("report JSON")
}

fn playlist(dir: &Path) -> Option<PathBuf> {
    let broadcasts = std::fs::read_dir(dir.join("data/broadcasts")).ok()?;
    broadcasts
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("hls/index.m3u8"))
        .find(|p| p.exists())
}

#[test]
fn a_job_runs_for_its_duration_and_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let out = run(dir.path(), JOB, "job.json", &["--duration", "10"])
        .output()
        .expect("run");
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stderr}");
    assert_no_glib_warnings("callcast run", &stderr);
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "took {:?}",
        started.elapsed()
    );
    // Not a terminal: one JSON object per line.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert!(lines.len() >= 2, "{stdout}");
    assert!(
        lines
            .iter()
            .any(|l| l["state"] == "live" && l["fps"].as_f64().is_some_and(|f| f > 20.0)),
        "{stdout}"
    );
    let report = report(dir.path());
    assert_eq!(report["state"], "ended", "{report}");
    assert!(report["frames_out"].as_u64().is_some_and(|f| f >= 270), "{report}");
    let dropped = report["frames_dropped"].as_u64().expect("frames_dropped");
    assert!(dropped < 30, "{report}");
    assert!(
        report["outputs"][0]["bytes"].as_u64().is_some_and(|b| b > 0),
        "{report}"
    );
    let playlist = playlist(dir.path()).expect("playlist");
    assert!(std::fs::read_to_string(playlist)
        .expect("playlist")
        .contains("#EXT-X-ENDLIST"));
}

#[test]
fn bad_job_files_exit_2_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad_json = JOB.replace("\"width\": 320", "\"width\": 0");
    let out = run(dir.path(), &bad_json, "bad.json", &[]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("video.width"));
    let bad_toml =
        "[source]\nkind = \"room\"\nroom = \"job\"\n\n[[outputs]]\nkind = \"hls\"\nsegment_seconds = \"one\"\n";
    let out = run(dir.path(), bad_toml, "bad.toml", &[]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The line of the [[outputs]] entry at fault (serde buffers tagged enums, so not the key itself).
    assert!(
        stderr.contains("bad.toml") && stderr.contains("line 5") && stderr.contains("\"one\""),
        "{stderr}"
    );
}

#[test]
fn a_toml_job_ends_by_itself_when_idle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let job = "[source]\nkind = \"room\"\nroom = \"job\"\n\n[video]\nwidth = 320\nheight = 180\n\n[[outputs]]\nkind = \"hls\"\n";
    let out = run(dir.path(), job, "job.toml", &["--until-idle", "2"])
        .output()
        .expect("run");
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stderr}");
    assert_no_glib_warnings("callcast run", &stderr);
    let report = report(dir.path());
    assert_eq!(
        (report["state"].as_str(), report["reason"].as_str()),
        (Some("ended"), Some("idle")),
        "{report}"
    );
}

#[test]
fn sigterm_finalises_the_job() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stderr = dir.path().join("stderr.log");
    let child = run(dir.path(), JOB, "job.json", &[])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("run");
    let mut child = KillOnDrop(child);
    let playlist = wait_for("HLS segments", Duration::from_secs(30), || {
        let p = playlist(dir.path())?;
        (std::fs::read_to_string(&p).ok()?.matches(".ts").count() >= 2).then_some(p)
    });
    let exit = child
        .signal_and_wait("TERM", Duration::from_secs(5))
        .expect("exits within 5 s");
    assert!(exit.success(), "{exit:?}");
    assert!(std::fs::read_to_string(playlist)
        .expect("playlist")
        .contains("#EXT-X-ENDLIST"));
    assert_eq!(report(dir.path())["state"], "ended");
    assert_no_glib_warnings("callcast run", &std::fs::read_to_string(stderr).unwrap_or_default());
}

#[test]
fn exit_codes_say_what_failed() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Nothing listens on the discard port: the Janus call cannot be joined.
    let unreachable = r#"{"source": {"kind": "janus", "url": "http://127.0.0.1:9/janus", "room": 1234},
      "outputs": [{"kind": "hls"}]}"#;
    let out = run(dir.path(), unreachable, "janus.json", &[]).output().expect("run");
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_no_glib_warnings("callcast run", &stderr);
    assert_eq!(report(dir.path())["failure"], "source");

    let refused = r#"{"source": {"kind": "room", "room": "job"}, "video": {"width": 320, "height": 180},
      "outputs": [{"kind": "rtmp", "url": "rtmp://127.0.0.1:9/live/key", "max_reconnect_s": 2}]}"#;
    let started = Instant::now();
    let out = run(dir.path(), refused, "refused.json", &[]).output().expect("run");
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert_no_glib_warnings("callcast run", &stderr);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "gave up after {:?}",
        started.elapsed()
    );
    let report = report(dir.path());
    assert_eq!(report["outputs"][0]["state"], "failed", "{report}");
    assert!(!report.to_string().contains("/live/key"), "{report}");
}
