//! An operator's own layout directory: a template with a background image and overlays of its own is loaded and
//! drawn (the tile, the picture and the overlays where worked out by hand); a broadcast overlay with the id of a
//! template one replaces it; a switch away from the template takes the picture and the template's overlays off the
//! air (the broadcast's own overlay stays); broken templates (a bad overlay among them) are reported with file,
//! line and field while the server starts with the good ones.

use crate::support::broadcast::{patch_broadcast, Broadcast};
use crate::support::media::decode_last_frame;
use crate::support::picture::{all, check, Area, ColourAt, Tile};
use crate::support::{get_json, publish, KillOnDrop, Server};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const W: usize = 640;
const H: usize = 360;
const MAGENTA: [u8; 3] = [255, 0, 255];
const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const YELLOW: [u8; 3] = [255, 255, 0];
const CYAN: [u8; 3] = [0, 255, 255];
/// stage.toml's overlays, 2:1 pictures 0.1 of the canvas high (36 px, so 72 wide): `title` at x 0.05, y 0.05 and
/// `badge` at x 0.05, y 0.8, over the picture.
const TEMPLATE_TITLE: Area = Area::new(32, 18, 72, 36);
const TEMPLATE_BADGE: Area = Area::new(32, 288, 72, 36);
/// The broadcast's own `title`, replacing the template's: x 0.75, y 0.05.
const OWN_TITLE: Area = Area::new(480, 18, 72, 36);
/// Inside the template's title and badge, where what is under them shows once they are gone.
const IN_TEMPLATE_TITLE: [(i32, i32); 3] = [(40, 26), (68, 36), (96, 46)];
const IN_TEMPLATE_BADGE: [(i32, i32); 3] = [(40, 296), (68, 306), (96, 316)];
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

/// An 8x4 PNG of one colour as a data URL (made with the `png` crate).
fn solid_png(colour: [u8; 3]) -> String {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, 8, 4);
    encoder.set_color(png::ColorType::Rgb);
    encoder
        .write_header()
        .and_then(|mut w| w.write_image_data(&colour.repeat(32)))
        .expect("PNG");
    let data = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes);
    format!("data:image/png;base64,{data}")
}

fn overlay_ids(status: &Value) -> Vec<&str> {
    status["overlays"]
        .as_array()
        .map(|list| list.iter().filter_map(|o| o["id"].as_str()).collect())
        .unwrap_or_default()
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
    // One tile in the middle; the picture around it; a title and a badge over the picture.
    let overlay = |id: &str, colour: [u8; 3], y: f64| {
        format!(
            "[[overlay]]\nid = \"{id}\"\nkind = \"image\"\ndata = \"{}\"\nx = 0.05\ny = {y}\nheight = 0.1\n",
            solid_png(colour)
        )
    };
    std::fs::write(
        dir.join("stage.toml"),
        format!(
            "description = \"centre tile on a picture\"\nbackground = \"#000000\"\nbackground_image = \"stage.png\"\n\
             labels = false\n[[region]]\nrole = \"all\"\nx = 0.25\ny = 0.25\nwidth = 0.5\nheight = 0.5\n{}{}",
            overlay("title", GREEN, 0.05),
            overlay("badge", YELLOW, 0.8)
        ),
    )
    .expect("stage.toml");
    // Line 8: an overlay off the canvas.
    std::fs::write(
        dir.join("offcanvas.toml"),
        "description = \"bad overlay\"\n[[region]]\nrole = \"all\"\nx = 0.0\ny = 0.0\nwidth = 1.0\nheight = 1.0\n\
         [[overlay]]\nkind = \"text\"\ntext = \"Hi\"\nx = 1.5\ny = 0.0\nheight = 0.1\n",
    )
    .expect("offcanvas.toml");
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
    assert!(
        !names.iter().any(|n| n == "broken" || n == "typo" || n == "offcanvas"),
        "{names:?}"
    );
    let log = server.log_text();
    assert!(log.contains("broken.toml:2") && log.contains("gone.png"), "{log}");
    assert!(log.contains("typo.toml:2") && log.contains("regoin"), "{log}");
    assert!(log.contains("offcanvas.toml:8: overlay[0].x: "), "{log}");

    let _red: KillOnDrop = publish(&server.whip_url("stage"), "red", "color:ff0000");
    let reply = crate::support::http()
        .post(server.url("/v1/broadcasts"))
        .json(&json!({
            "source": {"kind": "room", "room": "stage"},
            "layout": {"template": "stage"},
            "video": {"width": W, "height": H, "keyframe_interval_s": 1},
            "outputs": [{"kind": "hls", "segment_seconds": 1, "window": 60}],
        }))
        .send()
        .expect("POST /v1/broadcasts");
    assert_eq!(reply.status().as_u16(), 201);
    let created: Value = reply.json().expect("json");
    // The answer already lists the template's overlays.
    assert_eq!(overlay_ids(&created), ["title", "badge"], "{created}");
    let id = created["id"].as_str().expect("id");
    let bc = Broadcast {
        id: id.to_string(),
        status_url: server.url(&format!("/v1/broadcasts/{id}")),
        playlist: server
            .data_dir
            .path()
            .join(format!("data/broadcasts/{id}/hls/index.m3u8")),
    };
    wait_for_picture(
        &bc,
        "the red tile on the picture, the template's title and badge over it",
        &[
            Tile::new("red", RED, STAGE_TILE),
            Tile::new("template title", GREEN, TEMPLATE_TITLE),
            Tile::new("template badge", YELLOW, TEMPLATE_BADGE),
        ],
        &all(&AROUND_THE_TILE, MAGENTA),
    );
    let status = get_json(&server.url(&format!("/v1/broadcasts/{}", bc.id)));
    assert_eq!(overlay_ids(&status), ["title", "badge"], "{status}");

    // The broadcast's own `title` replaces the template's (the picture shows where that was); the badge stays.
    let own_title = json!({"id": "title", "kind": "image", "data": solid_png(CYAN), "x": 0.75, "y": 0.05,
                           "height": 0.1});
    let (code, status) = patch_broadcast(&server, &bc.id, json!({"overlays": [own_title]}));
    assert_eq!(code, 200, "{status}");
    assert_eq!(overlay_ids(&status), ["badge", "title"], "{status}");
    wait_for_picture(
        &bc,
        "the broadcast's title instead of the template's",
        &[
            Tile::new("own title", CYAN, OWN_TITLE),
            Tile::new("template badge", YELLOW, TEMPLATE_BADGE),
        ],
        &all(&IN_TEMPLATE_TITLE, MAGENTA),
    );

    // Switching to a template without a picture or overlays takes them away: red where they were; the
    // broadcast's own title stays.
    let (code, status) = patch_broadcast(&server, &bc.id, json!({"layout": {"template": "pip"}}));
    assert_eq!(code, 200, "{status}");
    assert_eq!(overlay_ids(&status), ["title"], "{status}");
    wait_for_picture(
        &bc,
        "red over the whole picture, the broadcast's title alone over it",
        &[
            Tile::new("red", RED, FULL_CANVAS),
            Tile::new("own title", CYAN, OWN_TITLE).on_top(),
        ],
        &[
            all(&AROUND_THE_TILE, RED),
            all(&IN_TEMPLATE_TITLE, RED),
            all(&IN_TEMPLATE_BADGE, RED),
        ]
        .concat(),
    );
    assert_eq!(bc.stop()["state"], "ended");
}
