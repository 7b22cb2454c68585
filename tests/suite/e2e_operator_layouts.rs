//! An operator's own layout directory: a template with a background image is loaded and drawn, broken
//! templates are reported with file and line while the server starts with the good ones.

use crate::support::broadcast::Broadcast;
use crate::support::media::{close_to, decode_last_frame};
use crate::support::{get_json, publish, wait_for, KillOnDrop, Server};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const W: usize = 640;
const H: usize = 360;
const MAGENTA: [u8; 3] = [255, 0, 255];

fn write_layouts(dir: &Path) {
    let made = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=0xff00ff:s=320x180",
            "-frames:v",
            "1",
        ])
        .arg(dir.join("stage.png"))
        .status()
        .expect("ffmpeg");
    assert!(made.success());
    // One tile in the middle; the picture around it.
    std::fs::write(
        dir.join("stage.toml"),
        "description = \"centre tile on a picture\"\nbackground = \"#000000\"\nbackground_image = \"stage.png\"\n\
         labels = false\n[[region]]\nrole = \"all\"\nx = 0.25\ny = 0.25\nwidth = 0.5\nheight = 0.5\n",
    )
    .expect("stage.toml");
    std::fs::write(
        dir.join("broken.toml"),
        "description = \"no picture\"\nbackground_image = \"gone.png\"\n[[region]]\nrole = \"all\"\nx = 0.0\n\
         y = 0.0\nwidth = 1.0\nheight = 1.0\n",
    )
    .expect("broken.toml");
    std::fs::write(
        dir.join("typo.toml"),
        "description = \"typo\"\n[[regoin]]\nrole = \"all\"\n",
    )
    .expect("typo.toml");
}

#[test]
fn operator_template_with_a_background_image() {
    let layouts = tempfile::tempdir().expect("tempdir");
    write_layouts(layouts.path());
    let server = Server::start(&["--layouts-dir", layouts.path().to_str().expect("path")]);

    let names: Vec<String> = get_json(&server.url("/v1/layouts"))["layouts"]
        .as_array()
        .expect("layouts")
        .iter()
        .filter_map(|l| l["name"].as_str().map(str::to_string))
        .collect();
    assert!(names.contains(&"stage".to_string()), "{names:?}");
    assert!(names.contains(&"grid".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n == "broken" || n == "typo"), "{names:?}");
    let log = server.log_text();
    assert!(log.contains("broken.toml:2") && log.contains("gone.png"), "{log}");
    assert!(log.contains("typo.toml:2") && log.contains("regoin"), "{log}");

    let _red: KillOnDrop = publish(&server.whip_url("stage"), "red", "color:ff0000");
    let bc = Broadcast::start(
        &server,
        &json!({
            "source": {"kind": "room", "room": "stage"},
            "layout": {"template": "stage"},
            "video": {"width": W, "height": H, "keyframe_interval_s": 1},
            "outputs": [{"kind": "hls", "segment_seconds": 1, "window": 60}],
        }),
    );
    wait_for("the red tile on the picture", Duration::from_secs(30), || {
        let text = std::fs::read_to_string(&bc.playlist).ok()?;
        let newest = bc.playlist.parent()?.join(text.lines().rfind(|l| l.ends_with(".ts"))?);
        let frame = decode_last_frame(&newest, W, H).ok()?;
        let tile = frame.pixel(W as i32 / 2, H as i32 / 2);
        let corners = [
            (20, 20),
            (W as i32 - 20, 20),
            (20, H as i32 - 20),
            (W as i32 - 20, H as i32 - 20),
        ];
        (close_to(tile, [255, 0, 0], 60) && corners.iter().all(|&(x, y)| close_to(frame.pixel(x, y), MAGENTA, 60)))
            .then_some(())
    });

    // Switching to a template without a picture takes it away.
    let reply = crate::support::http()
        .patch(server.url(&format!("/v1/broadcasts/{}", bc.id)))
        .json(&json!({"layout": {"template": "pip"}}))
        .send()
        .expect("PATCH");
    assert_eq!(reply.status().as_u16(), 200);
    assert_eq!(bc.stop()["state"], "ended");
}
