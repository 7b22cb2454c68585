//! Real headless Chromium (Debian package, driven by playwright-core): the demo plays in a browser, and a
//! browser with a fake camera is a participant of a Janus call, composited like the others.

use crate::support::broadcast::{participant_names, Broadcast};
use crate::support::child_lines::ChildLines;
use crate::support::janus::{Janus, ROOM, ROOM_PIN};
use crate::support::media::{close_to, last_frame};
use crate::support::{assert_no_glib_warnings, browser_script, publish_janus, KillOnDrop, Server, CALLCAST};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Reads a child's stdout lines until `pick` returns Some or the deadline passes.
fn read_until<T>(child: &mut std::process::Child, timeout: Duration, pick: impl FnMut(&str) -> Option<T>) -> T {
    ChildLines::of(child).until(timeout, pick)
}

/// A headless Chromium publishing a magenta fake camera (and a fake microphone) into the test room as
/// "browser": 640x360, or 1280x720 in three simulcast layers. Returns once Janus answered.
fn browser_publisher(janus: &Janus, simulcast: bool) -> KillOnDrop {
    let (size, file) = if simulcast {
        ("1280x720", "magenta720.y4m")
    } else {
        ("640x360", "magenta.y4m")
    };
    let camera = janus.dir.path().join(file);
    let made = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            &format!("color=c=magenta:s={size}:r=30"),
            "-t",
            "1",
        ])
        .args(["-pix_fmt", "yuv420p"])
        .arg(&camera)
        .status()
        .expect("ffmpeg");
    assert!(made.success());
    let mut browser = Command::new("node")
        .arg(browser_script("janus_publish.mjs"))
        .args([
            &janus.url(),
            &ROOM.to_string(),
            ROOM_PIN,
            "browser",
            camera.to_str().expect("path"),
        ])
        .args(simulcast.then_some("simulcast"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("node");
    read_until(&mut browser, Duration::from_secs(30), |l| {
        (l == "published").then_some(())
    });
    KillOnDrop(browser)
}

#[test]
fn demo_plays_in_a_browser() {
    let data = tempfile::tempdir().expect("tempdir");
    let stderr = data.path().join("demo-stderr.log");
    let mut demo = Command::new(CALLCAST)
        .args(["demo", "--participants", "2", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("callcast demo");
    let watch_url = read_until(&mut demo, Duration::from_secs(20), |line| {
        line.strip_prefix("watch it at ").map(str::to_string)
    });
    let mut demo = KillOnDrop(demo);
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo-watch.png");
    let out = Command::new("node")
        .arg(browser_script("screenshot.mjs"))
        .args([&watch_url, shot.to_str().expect("path"), "3"])
        .output()
        .expect("node (deploy/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "browser: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).expect("json from screenshot.mjs");
    assert!(result["currentTime"].as_f64().unwrap_or(0.0) > 3.0, "{result}");
    // SIGTERM: the demo stops its broadcast and its synthetic participants before exiting.
    let exit = demo
        .signal_and_wait("TERM", Duration::from_secs(10))
        .expect("demo exits on SIGTERM");
    assert!(exit.success(), "demo exit status {exit}");
    assert_no_glib_warnings("callcast demo", &std::fs::read_to_string(stderr).unwrap_or_default());
}

#[test]
fn browser_participant_in_a_janus_call() {
    if crate::support::rerun_in_loopback_namespace(module_path!(), "browser_participant_in_a_janus_call") {
        return;
    }
    let janus = Janus::start();
    let server = Server::start(&[]);
    let _browser = browser_publisher(&janus, false);
    let _red = publish_janus(&janus.url(), ROOM, ROOM_PIN, "red", "color:ff0000");

    let bc = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "janus", "url": janus.url(), "room": ROOM, "pin": ROOM_PIN},
            "video": {"width": 640, "height": 360, "keyframe_interval_s": 1},
            "outputs": [{"kind": "hls", "segment_seconds": 1, "window": 30}],
        }),
    );

    let expected = |name: &str| if name == "browser" { [255, 0, 255] } else { [255, 0, 0] };
    let canvas = callcast::layout::Canvas {
        width: 640,
        height: 360,
    };
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-janus.png");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let names = participant_names(&bc.status());
        let frame = bc.segments().pop().and_then(|s| last_frame(&s, 640, 360));
        let last = if let (2, Some(frame)) = (names.len(), frame) {
            let tiles = callcast::layout::grid(2, canvas, callcast::layout::TILE_GAP);
            let found: Vec<(String, [u8; 3])> = names
                .iter()
                .zip(&tiles)
                .map(|(n, t)| (n.clone(), frame.pixel(t.center().0, t.center().1)))
                .collect();
            if found.iter().all(|(n, px)| close_to(*px, expected(n), 60)) {
                break;
            }
            frame.save_png(&shot);
            format!("tiles {found:?} (frame in {})", shot.display())
        } else {
            format!("participants {names:?}")
        };
        assert!(
            Instant::now() < deadline,
            "browser and synthetic participant never on screen: {last}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let stopped = bc.stop();
    assert_eq!(stopped["state"], "ended");
}

/// The browser lists its layers low to high (`q`, `h`, `f`); with that order Janus 1.1.2's substream 0 is the
/// 1280 px layer (asking for 0 decoded 1280 px), so the broadcast learns which substream is which size.
#[test]
fn browser_simulcast_layer_follows_the_tile_size() {
    if crate::support::rerun_in_loopback_namespace(module_path!(), "browser_simulcast_layer_follows_the_tile_size") {
        return;
    }
    let janus = Janus::start();
    let server = Server::start(&[]);
    let _browser = browser_publisher(&janus, true);
    let _red = publish_janus(&janus.url(), ROOM, ROOM_PIN, "red", "color:ff0000");
    let bc = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "janus", "url": janus.url(), "room": ROOM, "pin": ROOM_PIN},
            "video": {"width": 640, "height": 360},
            "outputs": [{"kind": "hls"}],
        }),
    );
    let browser_video = |status: &Value| -> Option<(String, i64)> {
        let p = status["participants"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == "browser")?;
        Some((p["id"].as_str()?.to_string(), p["video"]["width"].as_i64()?))
    };
    // Two tiles of 314 px: the 320 px layer is the smallest that fills one.
    let started = Instant::now();
    let (id, _) = crate::support::wait_for("the 320 px layer in a 314 px tile", Duration::from_secs(30), || {
        browser_video(&bc.status()).filter(|(_, w)| *w == 320)
    });
    println!("down to 320 px after {:?}", started.elapsed());
    let patched = crate::support::http()
        .patch(&bc.status_url)
        .json(&json!({"layout": {"template": "single", "pin": id}}))
        .send()
        .expect("PATCH");
    assert_eq!(patched.status(), 200);
    let started = Instant::now();
    crate::support::wait_for("the 640 px layer in a 640 px tile", Duration::from_secs(30), || {
        browser_video(&bc.status()).filter(|(_, w)| *w == 640)
    });
    println!("up to 640 px after {:?}", started.elapsed());
    assert_eq!(bc.stop()["state"], "ended");
}
