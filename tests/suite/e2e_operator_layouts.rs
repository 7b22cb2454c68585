//! An operator's own layout directory: a template with a background image is loaded and drawn (the tile and the
//! picture where worked out by hand), a switch away from it takes the picture off the air, and broken templates
//! are reported with file and line while the server starts with the good ones.

use crate::support::broadcast::Broadcast;
use crate::support::media::decode_last_frame;
use crate::support::picture::{all, check, Area, ColourAt, Tile};
use crate::support::{get_json, publish, KillOnDrop, Server};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const W: usize = 640;
const H: usize = 360;
const MAGENTA: [u8; 3] = [255, 0, 255];
const RED: [u8; 3] = [255, 0, 0];
/// stage.toml below: one region at 0.25,0.25, 0.5 x 0.5 of 640x360 = 160,90 320x180; that is a 16:9 cell, so with
/// fit and no gap the tile fills it exactly.
const STAGE_TILE: Area = Area::new(160, 90, 320, 180);
/// Points around the stage tile, where the picture shows (the lower left corner is left out: in the template
/// switched to afterwards the name label is drawn there).
const AROUND_THE_TILE: [(i32, i32); 7] = [
    (20, 20),
    (320, 45),
    (620, 20),
    (80, 180),
    (560, 180),
    (320, 315),
    (620, 340),
];
/// pip.toml with one participant: its `speaker` region is the whole canvas (fill, gap 0), its inset has nobody.
const FULL_CANVAS: Area = Area::new(0, 0, 640, 360);

/// Polls until the newest segment shows `tiles` and `points`.
fn wait_for_picture(bc: &Broadcast, what: &str, tiles: &[Tile], points: &[ColourAt]) {
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let newest = std::fs::read_to_string(&bc.playlist)
            .ok()
            .and_then(|text| Some(bc.playlist.parent()?.join(text.lines().rfind(|l| l.ends_with(".ts"))?)));
        last = match newest.map(|segment| decode_last_frame(&segment, W, H)) {
            Some(Ok(frame)) => match check(&frame, tiles, points) {
                Ok(()) => return,
                Err(e) => e,
            },
            Some(Err(e)) => e,
            None => "no segment yet".into(),
        };
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("never saw {what}: {last}");
}

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
    wait_for_picture(
        &bc,
        "the red tile on the picture",
        &[Tile::new("red", RED, STAGE_TILE)],
        &all(&AROUND_THE_TILE, MAGENTA),
    );

    // Switching to a template without a picture takes it away: red where the picture was.
    let reply = crate::support::http()
        .patch(server.url(&format!("/v1/broadcasts/{}", bc.id)))
        .json(&json!({"layout": {"template": "pip"}}))
        .send()
        .expect("PATCH");
    assert_eq!(reply.status().as_u16(), 200);
    wait_for_picture(
        &bc,
        "red over the whole picture",
        &[Tile::new("red", RED, FULL_CANVAS)],
        &all(&AROUND_THE_TILE, RED),
    );
    assert_eq!(bc.stop()["state"], "ended");
}
