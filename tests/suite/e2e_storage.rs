//! Object storage against a real S3-compatible server (moto, through a relay that can take it down): a
//! recording, a keep-all HLS output and a tracks output with `upload: true` land whole in the bucket, through an
//! outage of storage mid-show, each object with its Content-Type and Cache-Control, the tracks manifest last; a
//! server SIGKILLed mid-show uploads, once restarted, the recording and track files it was writing and the
//! uploads it had queued (the tracks manifest completed from the files, last), and aborts the multipart uploads it left unfinished; a missing bucket and wrong credentials are named in that output's status while the
//! others go on; `upload` without storage is refused.

use crate::support::broadcast::Broadcast;
use crate::support::events::{follow_events, wait_event};
use crate::support::media::{codec_and_duration, duration_s, listed_segments};
use crate::support::s3::S3;
use crate::support::{http, publish, wait_for, KillOnDrop, Server};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long storage is down mid-show: the issue's 20 s, four times the uploads' longest backoff (5 s), so the
/// queue has backed off to its longest wait and is still retrying when storage comes back.
const OUTAGE: Duration = Duration::from_secs(20);

fn start(server: &Server, room: &str, outputs: Value) -> Broadcast {
    Broadcast::start(
        server,
        &json!({
            "source": {"kind": "room", "room": room},
            "video": {"width": 320, "height": 180, "keyframe_interval_s": 1},
            "outputs": outputs,
        }),
    )
}

fn output(status: &Value, id: &str) -> Value {
    Broadcast::output(status, id)
}

/// Waits for the upload error of `bc`'s `out_1` and asserts it names `cause`.
fn assert_upload_error(bc: &Broadcast, cause: &str) {
    let upload = wait_for("the upload error", Duration::from_secs(20), || {
        let upload = output(&bc.status(), "out_1")["upload"].clone();
        upload["last_error"].is_string().then_some(upload)
    });
    let error = upload["last_error"].as_str().unwrap_or_default();
    assert!(error.contains(cause), "the upload error names {cause:?}: {upload}");
}

/// What a CDN in front of the bucket is told: files that never change are cached a year, a live playlist a second.
const IMMUTABLE: &str = "max-age=31536000, immutable";
const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";

/// Waits until output `id`'s uploads have nothing pending and at least one file stored.
fn uploads_settled(server: &Server, bc: &str, id: &str, timeout: Duration) -> Value {
    let url = server.url(&format!("/v1/broadcasts/{bc}"));
    wait_for(&format!("{id}'s uploads to finish"), timeout, || {
        let status = crate::support::get_json(&url);
        let upload = output(&status, id)["upload"].clone();
        (upload["pending"] == 0 && upload["uploaded_files"].as_u64() > Some(0)).then_some(upload)
    })
}

/// The bucket's copy of the HLS output of broadcast `bc` equals the local one: the same playlist (with its end
/// list), and every segment it lists stored with the local segment's bytes.
fn assert_hls_stored(s3: &S3, server: &Server, prefix: &str, bc: &str) -> usize {
    // Keys under the bucket's root have no leading `/`.
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    let local_dir = server.data_dir.path().join(format!("data/broadcasts/{bc}/hls"));
    let local = std::fs::read_to_string(local_dir.join("index.m3u8")).expect("local playlist");
    let stored = String::from_utf8(s3.get(&format!("{prefix}{bc}/hls/index.m3u8"))).expect("utf-8 playlist");
    assert!(
        stored.contains("#EXT-X-ENDLIST"),
        "stored playlist has no end list:\n{stored}"
    );
    assert_eq!(stored, local, "the stored playlist is not the final one");
    let keys = s3.list(&format!("{prefix}{bc}/hls/"));
    let segments = listed_segments(&stored);
    for segment in &segments {
        let size = std::fs::metadata(local_dir.join(segment)).expect("local segment").len();
        let key = format!("{prefix}{bc}/hls/{segment}");
        assert!(
            keys.contains(&(key.clone(), size)),
            "{key} ({size} bytes) missing from the bucket: {keys:?}"
        );
    }
    assert_eq!(keys.len(), segments.len() + 1, "stray objects: {keys:?}");
    segments.len()
}

/// The bucket holds the tracks output's manifest under `prefix` and every file it lists (read by ffprobe as
/// the codec the manifest names, a second or more long; the local copies deleted: no keep), each with its type; the manifest was stored after all of them (the order of the
/// output's `upload.done` events).
fn assert_tracks_stored(
    s3: &S3,
    prefix: &str,
    local_dir: &Path,
    events: &std::sync::mpsc::Receiver<Value>,
    seen: &mut Vec<Value>,
) {
    let manifest_key = format!("{prefix}manifest.json");
    let manifest: Value = serde_json::from_slice(&s3.get(&manifest_key)).expect("manifest JSON");
    assert_eq!(manifest["complete"], true, "{manifest:#}");
    let files: Vec<String> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["file"].as_str().expect("file name").to_string())
        .collect();
    let kinds: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"video") && kinds.contains(&"audio"),
        "a video and an audio track: {manifest:#}"
    );
    let stored = s3.list(prefix);
    let mut expected: Vec<String> = files.iter().map(|f| format!("{prefix}{f}")).collect();
    expected.push(manifest_key.clone());
    expected.sort();
    assert_eq!(
        stored.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        expected,
        "the bucket holds the listed files and the manifest, nothing else"
    );
    let scratch = tempfile::tempdir().expect("tempdir");
    for name in &files {
        let key = format!("{prefix}{name}");
        let downloaded = scratch.path().join(name);
        std::fs::write(&downloaded, s3.get(&key)).expect("write download");
        let entry = manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["file"] == name.as_str())
            .unwrap();
        let (codec, seconds) = codec_and_duration(&downloaded);
        assert_eq!(Some(codec.as_str()), entry["codec"].as_str(), "{name}");
        assert!(seconds >= 1.0, "{name} holds {seconds:.2} s");
        assert_eq!(
            s3.head(&key),
            ("video/webm".to_string(), IMMUTABLE.to_string()),
            "{key}"
        );
        assert!(
            !local_dir.join(name).exists(),
            "{name} is deleted once stored (no keep)"
        );
    }
    assert_eq!(
        s3.head(&manifest_key),
        ("application/json".to_string(), "no-cache".to_string())
    );
    wait_event(
        events,
        seen,
        "upload.done of the manifest",
        Duration::from_secs(5),
        |e| e["kind"] == "upload.done" && e["data"]["key"] == manifest_key.as_str(),
    );
    let order: Vec<&str> = seen
        .iter()
        .filter(|e| e["kind"] == "upload.done" && e["data"]["output_id"] == "out_2")
        .filter_map(|e| e["data"]["key"].as_str())
        .collect();
    let manifest_at = order.iter().position(|k| *k == manifest_key).expect("manifest done");
    for name in &files {
        let key = format!("{prefix}{name}");
        let at = order.iter().position(|k| *k == key);
        assert!(
            at.is_some_and(|at| at < manifest_at),
            "{key} not stored before the manifest: {order:?}"
        );
    }
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// The end (s) of the last packet of `path`'s only stream, as ffprobe reads the file (a file a crash left has no
/// duration of its own).
fn last_packet_end_s(path: &Path) -> f64 {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=pts_time,duration_time",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut fields = l.split(',');
            let pts: f64 = fields.next()?.trim().parse().ok()?;
            let duration: f64 = fields.next().and_then(|d| d.trim().parse().ok()).unwrap_or(0.0);
            Some(pts + duration)
        })
        .fold(0.0, f64::max)
}

/// The manifest of a tracks output whose server was killed (`killed_at` on the outputs' timeline, ms), as the
/// restart completed it: complete, and each file that was being written (the participant's video and sound)
/// marked ended by the crash, its end where its last packet ends (by ffprobe) and a second or two before the kill
/// at most.
fn assert_crash_completed(manifest: &Value, dir: &Path, killed_at: i64) {
    assert_eq!(manifest["complete"], true, "completed at restart: {manifest:#}");
    let files = manifest["files"].as_array().expect("files");
    let open: Vec<&Value> = files.iter().filter(|f| f["closed"] == false).collect();
    assert!(open.len() >= 2, "the video and sound being written: {manifest:#}");
    for file in open {
        assert_eq!(file["ended_by_crash"], true, "{file}");
        let name = file["file"].as_str().expect("file name");
        let (start, end) = (file["start_ms"].as_i64().unwrap(), file["end_ms"].as_i64().unwrap());
        let held_s = last_packet_end_s(&dir.join(name));
        let span_s = (end - start) as f64 / 1000.0;
        assert!(
            (held_s - span_s).abs() < 0.05,
            "{name}: {held_s:.3} s in the file, {span_s:.3} s by its offsets"
        );
        assert!(
            end <= killed_at + 300 && end >= killed_at - 2500,
            "{name} ends at {end}, the server was killed at {killed_at}"
        );
    }
}

#[test]
fn a_recording_and_hls_arrive_whole_through_a_storage_outage() {
    let s3 = S3::start("shows");
    let config_dir = tempfile::tempdir().expect("tempdir");
    let config = s3.config_file(config_dir.path(), "shows", "prod/eu");
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let events = follow_events(&server);
    let _red: KillOnDrop = publish(&server.whip_url("s3"), "red", "color:ff0000");
    let bc = start(
        &server,
        "s3",
        json!([{"kind": "hls", "segment_seconds": 1, "window": 0, "upload": true},
               {"kind": "record", "upload": true},
               {"kind": "tracks", "upload": true}]),
    );
    let hls_prefix = format!("prod/eu/{}/hls/", bc.id);
    wait_for("3 segments in the bucket", Duration::from_secs(20), || {
        (s3.list(&hls_prefix).iter().filter(|(k, _)| k.ends_with(".ts")).count() >= 3).then_some(())
    });
    // Uploaded in order: the playlists listing those segments are there, as live playlists.
    assert_eq!(
        s3.head(&format!("{hls_prefix}index.m3u8")),
        (PLAYLIST_TYPE.to_string(), "max-age=1".to_string()),
        "a live playlist"
    );

    s3.down();
    let down_at = Instant::now();
    let failing = wait_for("the HLS uploads failing", Duration::from_secs(10), || {
        let upload = output(&bc.status(), "out_0")["upload"].clone();
        (upload["last_error"].is_string() && upload["pending"].as_u64() > Some(0)).then_some(upload)
    });
    assert!(
        failing["last_error"].as_str().unwrap_or_default().contains("127.0.0.1"),
        "the error names where storage is: {failing}"
    );
    std::thread::sleep(OUTAGE.saturating_sub(down_at.elapsed()));
    s3.up();
    std::thread::sleep(Duration::from_secs(2));
    let ended = bc.stop();
    let on_air_s = (ended["ended_at_ms"].as_u64().expect("ended_at_ms")
        - ended["live_at_ms"].as_u64().expect("live_at_ms")) as f64
        / 1000.0;
    let local_recording = PathBuf::from(output(&ended, "out_1")["path"].as_str().expect("recording path"));

    let hls = uploads_settled(&server, &bc.id, "out_0", Duration::from_secs(20));
    let recording = uploads_settled(&server, &bc.id, "out_1", Duration::from_secs(20));
    let tracks = uploads_settled(&server, &bc.id, "out_2", Duration::from_secs(20));
    assert!(tracks["last_error"].is_null(), "{tracks}");
    assert!(hls["last_error"].is_null(), "cleared once storage is back: {hls}");
    assert_eq!(recording["uploaded_files"], 1, "{recording}");
    let segments = assert_hls_stored(&s3, &server, "prod/eu", &bc.id);
    assert!(
        segments as f64 >= on_air_s - 2.0,
        "{segments} segments of 1 s for {on_air_s:.1} s on air"
    );
    assert_eq!(
        s3.head(&format!("{hls_prefix}index.m3u8")),
        (PLAYLIST_TYPE.to_string(), "max-age=60".to_string()),
        "the closed playlist (not immutable: a re-added output reopens it)"
    );
    assert_eq!(
        s3.head(&format!("{hls_prefix}segment00001.ts")),
        ("video/mp2t".to_string(), IMMUTABLE.to_string())
    );

    // The recording: one object under recordings/, the show's length; the local file gone once stored.
    let keys = s3.list(&format!("prod/eu/{}/recordings/", bc.id));
    let name = local_recording.file_name().unwrap().to_str().unwrap();
    let key = format!("prod/eu/{}/recordings/{name}", bc.id);
    assert_eq!(keys.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), [key.as_str()]);
    assert_eq!(recording["uploaded_bytes"].as_u64(), Some(keys[0].1), "{recording}");
    assert_eq!(s3.head(&key), ("video/mp4".to_string(), IMMUTABLE.to_string()));
    let downloaded = config_dir.path().join(name);
    std::fs::write(&downloaded, s3.get(&key)).expect("write download");
    let recorded = duration_s(&downloaded);
    assert!(
        (recorded - on_air_s).abs() <= 1.0,
        "{recorded:.2} s stored of a broadcast live for {on_air_s:.2} s"
    );
    crate::support::media::assert_decodes_cleanly(downloaded.to_str().unwrap());
    assert!(
        !local_recording.exists(),
        "the local recording is deleted once stored (no keep)"
    );

    // Events and metrics.
    let mut seen = Vec::new();
    let tracks_dir = server
        .data_dir
        .path()
        .join(format!("data/broadcasts/{}/tracks/out_2", bc.id));
    let tracks_prefix = format!("prod/eu/{}/tracks/out_2/", bc.id);
    assert_tracks_stored(&s3, &tracks_prefix, &tracks_dir, &events, &mut seen);
    let failed = wait_event(&events, &mut seen, "upload.failed", Duration::from_secs(5), |e| {
        e["kind"] == "upload.failed" && e["data"]["output_id"] == "out_0"
    });
    assert!(failed["data"]["retry_in_ms"].as_u64().is_some(), "{failed}");
    let done = wait_event(
        &events,
        &mut seen,
        "upload.done of the recording",
        Duration::from_secs(5),
        |e| e["kind"] == "upload.done" && e["data"]["output_id"] == "out_1",
    );
    assert_eq!(
        (done["broadcast_id"].as_str(), done["data"]["key"].as_str()),
        (Some(bc.id.as_str()), Some(key.as_str()))
    );
    let metrics = http()
        .get(server.url("/metrics"))
        .send()
        .and_then(|r| r.text())
        .expect("metrics");
    let line = metrics
        .lines()
        .find(|l| l.starts_with("callcast_upload_bytes_total{") && l.contains("output_id=\"out_1\""))
        .unwrap_or_else(|| panic!("no upload bytes for out_1 in:\n{metrics}"));
    assert_eq!(
        line.rsplit(' ').next().and_then(|v| v.parse().ok()),
        Some(keys[0].1),
        "{line}"
    );
    let log = server.log_text();
    assert!(!log.contains("sekrit-storage-key"), "the secret key is in the log");
}

#[test]
fn a_server_killed_mid_show_uploads_its_recording_and_queue_after_restart() {
    let s3 = S3::start("shows");
    let config_dir = tempfile::tempdir().expect("tempdir");
    let config = s3.config_file(config_dir.path(), "shows", "");
    let flags = ["--config", config.to_str().unwrap()];
    let mut server = Server::start(&flags);
    let _red: KillOnDrop = publish(&server.whip_url("crash"), "red", "color:ff0000");
    let bc = start(
        &server,
        "crash",
        json!([{"kind": "hls", "segment_seconds": 1, "window": 0, "upload": true},
               {"kind": "record", "upload": true, "keep": true},
               {"kind": "tracks", "upload": true, "keep": true}]),
    );
    wait_for("2 segments in the bucket", Duration::from_secs(20), || {
        (s3.list(&format!("{}/hls/", bc.id)).len() >= 2).then_some(())
    });
    // Storage goes down, so what is cut from now on waits in the queue on disk when the server dies.
    s3.down();
    wait_for("uploads queued and both tracks listed", Duration::from_secs(10), || {
        let status = bc.status();
        (output(&status, "out_0")["upload"]["pending"].as_u64() >= Some(3)
            && output(&status, "out_2")["files"].as_u64() >= Some(2))
        .then_some(())
    });
    let status = bc.status();
    let recording = PathBuf::from(output(&status, "out_1")["path"].as_str().expect("recording path"));
    // The outputs' timeline (ms) at the kill, from the status' latest (timeline, wall clock) pair.
    let timeline = &status["timeline"];
    let (Some(media_s), Some(seen_ms)) = (timeline["media_s"].as_f64(), timeline["at_ms"].as_i64()) else {
        panic!("no timeline in the status: {status}");
    };
    let killed_at = (media_s * 1000.0) as i64 + (wall_ms() - seen_ms);
    server
        .process
        .signal_and_wait("KILL", Duration::from_secs(5))
        .expect("server killed");
    s3.up();
    // What a server killed while uploading leaves: a multipart upload of one of its keys never finished. The
    // other, under a broadcast id this server never had, is another server's upload in progress.
    let recording_key = format!(
        "{}/recordings/{}",
        bc.id,
        recording.file_name().unwrap().to_str().unwrap()
    );
    s3.start_multipart(&recording_key);
    s3.start_multipart("bc_0therserver000000/recordings/out_0-x.mp4");
    server.restart(&flags);
    wait_for("the unfinished upload aborted", Duration::from_secs(10), || {
        (s3.multipart_uploads() == ["bc_0therserver000000/recordings/out_0-x.mp4"]).then_some(())
    });

    // The recording cut off by the kill: uploaded as it is (playable to about the kill), and kept (keep).
    let key = format!(
        "{}/recordings/{}",
        bc.id,
        recording.file_name().unwrap().to_str().unwrap()
    );
    let local_size = std::fs::metadata(&recording).expect("kept recording").len();
    wait_for("the recording in the bucket", Duration::from_secs(20), || {
        s3.list(&key).contains(&(key.clone(), local_size)).then_some(())
    });
    let stored = s3.get(&key);
    assert!(
        stored == std::fs::read(&recording).expect("local recording"),
        "the stored recording is not the local one"
    );
    // (Bigger than the multipart threshold with its index room: stored in parts, with its headers all the same.)
    assert_eq!(s3.head(&key), ("video/mp4".to_string(), IMMUTABLE.to_string()));
    let downloaded = config_dir.path().join("crashed.mp4");
    std::fs::write(&downloaded, stored).expect("write download");
    let seconds = duration_s(&downloaded);
    assert!(seconds >= 1.0, "the stored recording plays ({seconds:.2} s)");
    // Every segment the closed playlist lists, and the playlist itself once they are stored.
    wait_for("the closed playlist in the bucket", Duration::from_secs(20), || {
        let stored = s3.list(&format!("{}/hls/index.m3u8", bc.id));
        (!stored.is_empty()
            && String::from_utf8_lossy(&s3.get(&format!("{}/hls/index.m3u8", bc.id))).contains("#EXT-X-ENDLIST"))
        .then_some(())
    });
    let segments = assert_hls_stored(&s3, &server, "", &bc.id);
    assert!(segments >= 3, "{segments} segments");

    // The track files the manifest listed when the server died (never closed: their appearance did not end),
    // stored with the local bytes (kept), and the manifest itself.
    let tracks_dir = server
        .data_dir
        .path()
        .join(format!("data/broadcasts/{}/tracks/out_2", bc.id));
    let manifest_key = format!("{}/tracks/out_2/manifest.json", bc.id);
    wait_for("the tracks manifest in the bucket", Duration::from_secs(20), || {
        (!s3.list(&manifest_key).is_empty()).then_some(())
    });
    let manifest = s3.get(&manifest_key);
    assert_eq!(
        manifest,
        std::fs::read(tracks_dir.join("manifest.json")).expect("local manifest")
    );
    let manifest: Value = serde_json::from_slice(&manifest).expect("manifest JSON");
    let files = manifest["files"].as_array().expect("files");
    assert!(files.len() >= 2, "{manifest:#}");
    assert_crash_completed(&manifest, &tracks_dir, killed_at);
    for file in files {
        let name = file["file"].as_str().expect("file name");
        let stored = s3.get(&format!("{}/tracks/out_2/{name}", bc.id));
        assert!(
            stored == std::fs::read(tracks_dir.join(name)).expect("kept track file"),
            "the stored {name} is not the local one"
        );
    }
}

#[test]
fn a_missing_bucket_or_wrong_credentials_are_that_outputs_error_and_upload_needs_storage() {
    let s3 = S3::start("shows");
    let config_dir = tempfile::tempdir().expect("tempdir");
    let config = s3.config_file(config_dir.path(), "no-such-bucket", "x");
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let _red: KillOnDrop = publish(&server.whip_url("nobucket"), "red", "color:ff0000");
    let bc = start(
        &server,
        "nobucket",
        json!([{"kind": "record"}, {"kind": "hls", "segment_seconds": 1, "upload": true}]),
    );
    assert_upload_error(&bc, "bucket `no-such-bucket` does not exist");
    let status = bc.status();
    assert_eq!(
        output(&status, "out_0")["state"],
        "live",
        "the recording goes on: {status}"
    );
    assert_eq!(
        output(&status, "out_1")["state"],
        "live",
        "HLS itself goes on locally: {status}"
    );
    let bytes = output(&status, "out_0")["bytes"].as_u64().unwrap_or(0);
    wait_for("the recording growing", Duration::from_secs(5), || {
        (output(&bc.status(), "out_0")["bytes"].as_u64() > Some(bytes)).then_some(())
    });
    let text = serde_json::to_string(&bc.status()).unwrap();
    assert!(
        !text.contains("sekrit") && !text.contains("AKIDTEST"),
        "a credential in the status: {text}"
    );
    bc.stop();

    // Wrong credentials: named in that output's status; the recording beside it goes on.
    let strict = S3::start_checking_credentials("shows");
    let config = strict.config_file(config_dir.path(), "shows", "x");
    let refused = Server::start(&["--config", config.to_str().unwrap()]);
    let _blue: KillOnDrop = publish(&refused.whip_url("creds"), "blue", "color:0000ff");
    let bc = start(
        &refused,
        "creds",
        json!([{"kind": "record"}, {"kind": "hls", "segment_seconds": 1, "upload": true}]),
    );
    assert_upload_error(&bc, "does not know the access key id");
    assert_eq!(output(&bc.status(), "out_0")["state"], "live", "the recording goes on");
    let text = serde_json::to_string(&bc.status()).unwrap() + &refused.log_text();
    assert!(
        !text.contains("sekrit-storage-key"),
        "the secret key in the status or log"
    );
    bc.stop();

    // A server without storage refuses upload, naming the field.
    let plain = Server::start(&[]);
    let response = http()
        .post(plain.url("/v1/broadcasts"))
        .json(&json!({"source": {"kind": "room", "room": "r"},
                      "outputs": [{"kind": "hls"}, {"kind": "record", "upload": true}]}))
        .send()
        .expect("POST");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().expect("JSON");
    assert_eq!(body["field"], "outputs[1].upload", "{body}");
}
