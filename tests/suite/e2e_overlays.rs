//! Overlays end to end: a title (text on a box) and a logo (a PNG data URL) drawn over a participant, at the
//! rectangles their fractions give on the canvas; a PATCH taking the title off shows the participant there again
//! within seconds, without a gap in the output; bad overlays are refused naming the field.

use crate::support::broadcast::{patch_broadcast, Broadcast};
use crate::support::media::{close_to, decode_last_frame, max_gap, video_pts, Frame};
use crate::support::{http, publish, wait_for, Server};
use base64::Engine;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const W: usize = 640;
const H: usize = 360;
const RED: [u8; 3] = [255, 0, 0];
const BLUE: [u8; 3] = [0, 0, 255];
const GREEN: [u8; 3] = [0, 255, 0];
/// Encoded colours drift a little; text edges blur.
const TOLERANCE: u8 = 48;

/// The title: x 0.1, y 0.1, height 0.2 of 640x360 -> top-left (64, 36), 72 px high; 15% padding -> 11 px.
const TITLE_X: i32 = 64;
const TITLE_Y: i32 = 36;
const TITLE_H: i32 = 72;
const TITLE_PAD: i32 = 11;
/// The logo: a 2:1 picture at x 0.75, y 0.1, height 0.2 -> (480, 36), 144x72.
const LOGO: (i32, i32, i32, i32) = (480, 36, 144, 72);

fn title() -> Value {
    json!({"id": "title", "kind": "text", "text": "HELLO", "x": 0.1, "y": 0.1, "height": 0.2,
           "color": "ffffff", "background": "0000ff"})
}

/// An 8x4 solid green PNG as a data URL (made with the `png` crate).
fn logo() -> Value {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, 8, 4);
    encoder.set_color(png::ColorType::Rgb);
    encoder
        .write_header()
        .unwrap()
        .write_image_data(&GREEN.repeat(32))
        .unwrap();
    let data = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    );
    json!({"id": "logo", "kind": "image", "data": data, "x": 0.75, "y": 0.1, "height": 0.2})
}

fn listed_segments(playlist: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(playlist).unwrap_or_default();
    text.lines()
        .filter(|l| l.ends_with(".ts"))
        .map(str::to_string)
        .collect()
}

/// The first video frame of a segment, decoded to RGB at the canvas size.
fn first_frame(segment: &Path) -> Result<Frame, String> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(segment)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .map_err(|e| format!("ffmpeg: {e}"))?;
    if out.stdout.len() != W * H * 3 {
        return Err(format!(
            "{} bytes: {}",
            out.stdout.len(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(Frame {
        width: W,
        height: H,
        rgb: out.stdout,
    })
}

fn newest_frame(playlist: &Path) -> Result<Frame, String> {
    let text = std::fs::read_to_string(playlist).map_err(|e| format!("playlist: {e}"))?;
    let newest: PathBuf = playlist
        .parent()
        .expect("dir")
        .join(text.lines().rfind(|l| l.ends_with(".ts")).ok_or("no segment yet")?);
    decode_last_frame(&newest, W, H)
}

/// Points inside the title's box but in its padding (no glyph there): the box colour when the title is on air.
fn title_padding_points() -> Vec<(i32, i32)> {
    let (x, y, bottom) = (TITLE_X, TITLE_Y, TITLE_Y + TITLE_H - 1);
    vec![
        (x + 3, y + 3),
        (x + 3, bottom - 3),
        (x + 60, y + 4),
        (x + 100, bottom - 4),
        (x + 4, y + 36),
    ]
}

/// Pixels inside the title's text area (within the padding) that are white-ish: the letters.
fn white_text_pixels(frame: &Frame) -> usize {
    let (x0, y0) = (TITLE_X + TITLE_PAD, TITLE_Y + TITLE_PAD);
    let (x1, y1) = (x0 + 120, TITLE_Y + TITLE_H - TITLE_PAD);
    (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| (x, y)))
        .filter(|&(x, y)| frame.pixel(x, y).iter().all(|&c| c > 200))
        .count()
}

fn logo_points() -> Vec<(i32, i32)> {
    let (x, y, w, h) = LOGO;
    vec![(x + 4, y + 4), (x + w / 2, y + h / 2), (x + w - 5, y + h - 5)]
}

fn colour_at(frame: &Frame, points: &[(i32, i32)], colour: [u8; 3]) -> Result<(), String> {
    for &(x, y) in points {
        let seen = frame.pixel(x, y);
        if !close_to(seen, colour, TOLERANCE) {
            return Err(format!("{seen:?} at ({x}, {y}), expected {colour:?}"));
        }
    }
    Ok(())
}

fn title_and_logo_shown(frame: &Frame) -> Result<(), String> {
    colour_at(frame, &title_padding_points(), BLUE).map_err(|e| format!("title box: {e}"))?;
    let white = white_text_pixels(frame);
    if white < 150 {
        return Err(format!("only {white} white text pixels in the title"));
    }
    colour_at(frame, &logo_points(), GREEN).map_err(|e| format!("logo: {e}"))
}

fn poll_frame(playlist: &Path, what: &str, timeout: Duration, check: impl Fn(&Frame) -> Result<(), String>) {
    let deadline = Instant::now() + timeout;
    loop {
        let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("overlays-last.png");
        let result = newest_frame(playlist).and_then(|f| check(&f).inspect_err(|_| f.save_png(&shot)));
        match result {
            Ok(()) => return,
            Err(e) if Instant::now() >= deadline => panic!("{what} not on air within {timeout:?}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

#[test]
fn title_and_logo_on_air_and_a_patch_takes_the_title_off_without_a_gap() {
    let server = Server::start(&[]);
    let whip = server.whip_url("overlays");
    let _red = publish(&whip, "red", "color:ff0000");
    let request = |overlays: Value| {
        json!({
            "source": {"kind": "room", "room": "overlays"},
            "video": {"width": W, "height": H, "keyframe_interval_s": 1},
            "outputs": [{"kind": "hls", "segment_seconds": 1, "window": 600}],
            "overlays": overlays,
        })
    };
    // Refused before anything starts, naming the field.
    let mut far = title();
    far["x"] = json!(1.2);
    for (overlays, field) in [
        (json!([logo(), far]), "overlays[1].x"),
        (json!([{"kind": "ticker", "text": "x"}]), "overlays[0].kind"),
        (
            json!([{"kind": "image", "data": "https://example.com/a.png", "x": 0, "y": 0, "height": 0.1}]),
            "overlays[0].data",
        ),
    ] {
        let r = http()
            .post(server.url("/v1/broadcasts"))
            .json(&request(overlays))
            .send()
            .expect("POST");
        let status = r.status().as_u16();
        let body: Value = r.json().unwrap_or(Value::Null);
        assert_eq!((status, body["field"].as_str()), (400, Some(field)), "{body}");
    }

    let bc = Broadcast::start(&server, &request(json!([title(), logo()])));
    poll_frame(
        &bc.playlist,
        "title and logo",
        Duration::from_secs(15),
        title_and_logo_shown,
    );

    let listed = |status: &Value| status["overlays"].clone();
    assert_eq!(
        listed(&bc.status()),
        json!([{"id": "title", "kind": "text"}, {"id": "logo", "kind": "image"}]),
        "the status lists what is on air"
    );
    let (code, body) = patch_broadcast(&server, &bc.id, json!({"overlays": [logo()]}));
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        listed(&body),
        json!([{"id": "logo", "kind": "image"}]),
        "the PATCH's reply: {body}"
    );
    // The change is made before the reply. n segments were listed then; the one being cut ends within a segment
    // (1 s) and the next within another, so the first frame of the segment after those two comes at most 2 s of
    // output after the PATCH (earlier still if the playlist lists segments late): the title must be off it. Read
    // from media, not the wall clock, so a loaded machine reading the output late cannot pass or fail it.
    let n = listed_segments(&bc.playlist).len();
    let after = wait_for("the third segment after the PATCH", Duration::from_secs(8), || {
        listed_segments(&bc.playlist).get(n + 2).cloned()
    });
    let segment = bc.playlist.parent().expect("dir").join(after);
    let frame = first_frame(&segment).expect("first frame after the PATCH");
    colour_at(&frame, &title_padding_points(), RED)
        .and_then(|()| colour_at(&frame, &logo_points(), GREEN))
        .unwrap_or_else(|e| {
            frame.save_png(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("overlays-after-patch.png"));
            panic!("first frame of {}: {e}", segment.display())
        });
    assert_eq!(bc.stop()["state"], "ended");
    let pts = video_pts(bc.playlist.to_str().expect("path"));
    let gap = max_gap(&pts);
    assert!(pts.len() > 30 * 3, "only {} frames", pts.len());
    assert!(gap < 0.1, "video gap of {gap:.3} s around the overlay change");
}
