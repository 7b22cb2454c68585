//! The operator page in real headless Chromium: with the API token it starts a broadcast from the form, its
//! preview plays, a layout switch shows in a decoded output frame, and stop ends it.

use crate::support::media::{close_to, decode_last_frame};
use crate::support::{browser_script, publish_with, wait_for, KillOnDrop, Server};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const TOKEN: &str = "operator-token-1c9d";

fn colour_at(playlist: &std::path::Path, x: i32, y: i32) -> Option<[u8; 3]> {
    let text = std::fs::read_to_string(playlist).ok()?;
    let newest = playlist.parent()?.join(text.lines().rfind(|l| l.ends_with(".ts"))?);
    decode_last_frame(&newest, 640, 360).ok().map(|f| f.pixel(x, y))
}

#[test]
fn start_switch_and_stop_from_the_operator_page() {
    let server = Server::start(&["--api-token", TOKEN]);
    let whip = server.whip_url("stage");
    let _participants: Vec<KillOnDrop> = [("red", "ff0000"), ("blue", "0000ff")]
        .iter()
        .map(|(name, hex)| {
            let pattern = format!("color:{hex}");
            publish_with(
                &whip,
                name,
                &["--pattern", &pattern, "--tone", "0", "--token", TOKEN],
                Stdio::null(),
            )
        })
        .collect();

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("operator-page.png");
    let mut browser = Command::new("node")
        .arg(browser_script("operator.mjs"))
        .args([&server.url(""), TOKEN, "stage", shot.to_str().expect("path")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node (deploy/install-deps.sh installs it)");
    let mut stdin = browser.stdin.take().expect("stdin");
    let stdout = browser.stdout.take().expect("stdout");
    let browser = KillOnDrop(browser);
    let (tx, steps) = mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(step) = serde_json::from_str(&line) {
                if tx.send(step).is_err() {
                    return;
                }
            }
        }
    });
    let next = |name: &str| -> Value {
        let step = steps
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the page never reached `{name}`"));
        assert_eq!(step["step"], name, "{step}");
        step
    };

    let live = next("live");
    let id = live["id"].as_str().expect("id").to_string();
    assert!(live["currentTime"].as_f64().is_some_and(|t| t > 2.0), "{live}");
    let playlist = server
        .data_dir
        .path()
        .join(format!("data/broadcasts/{id}/hls/index.m3u8"));
    // Grid of two side by side: the middle of the upper half is the gap between them.
    wait_for("the grid on air", Duration::from_secs(20), || {
        colour_at(&playlist, 320, 140)
            .filter(|c| close_to(*c, [0, 0, 0], 40))
            .map(|_| ())
    });

    next("switched");
    // The speaker template: one participant large across the top.
    wait_for("the speaker layout on air", Duration::from_secs(20), || {
        colour_at(&playlist, 320, 140)
            .filter(|c| close_to(*c, [255, 0, 0], 60) || close_to(*c, [0, 0, 255], 60))
            .map(|_| ())
    });

    writeln!(stdin, "stop").expect("tell the page to stop");
    next("ended");
    let text = std::fs::read_to_string(&playlist).expect("playlist");
    assert!(text.contains("#EXT-X-ENDLIST"));
    drop(browser);
}
