//! Overlays end to end: a title (text on a box) and a logo (a PNG data URL) drawn over a participant, at the
//! rectangles their fractions give on the canvas; a PATCH taking the title off shows the participant there again
//! within seconds, without a gap in the output; bad overlays are refused naming the field. On the same broadcast: a
//! lower third added by that PATCH with a 1 s fade has frames of blended colour, then sits at the bottom of its
//! participant's tile, and follows the tile when a PATCH switches the template. A clock and a timer sit in their
//! boxes where asked, their text changing about once a second and never within one; the participant's name label
//! is the expected fraction of their full-canvas tile high.

use crate::support::broadcast::{patch_broadcast, Broadcast};
use crate::support::media::{close_to, decode_last_frame, max_gap, try_video_pts, video_pts, Frame};
use crate::support::picture::{label_shown, Area, LabelBox, Tile};
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
const YELLOW: [u8; 3] = [255, 255, 0];
const BLACK: [u8; 3] = [0, 0, 0];
/// Encoded colours drift a little; text edges blur.
const TOLERANCE: u8 = 48;

/// The title: x 0.1, y 0.1, height 0.2 of 640x360 -> top-left (64, 36), 72 px high; 15% padding -> 11 px.
const TITLE_X: i32 = 64;
const TITLE_Y: i32 = 36;
const TITLE_H: i32 = 72;
const TITLE_PAD: i32 = 11;
/// The logo: a 2:1 picture at x 0.75, y 0.1, height 0.2 -> (480, 36), 144x72.
const LOGO: (i32, i32, i32, i32) = (480, 36, 144, 72);

/// The clock: x 0.55, y 0.35, height 0.12 of 640x360 -> (352, 126), 43 px high (round(43.2)); padding 0.2 ->
/// 9 px (round(8.6)). The timer: the same at y 0.5 -> (352, 180). Both white on blue, clear of every other
/// point this test looks at.
const CLOCK: (i32, i32) = (352, 126);
const TIMER: (i32, i32) = (352, 180);
const TICKING_H: i32 = 43;
const TICKING_PAD: i32 = 9;
/// "HH:MM:SS" in 25 px DejaVu Sans is about 115 px wide, "H:MM:SS" about 100: the text areas compared frame to
/// frame are the first 90 px of each.
const TICKING_TEXT_W: i32 = 90;

fn clock() -> Value {
    json!({"id": "clock", "kind": "clock", "x": 0.55, "y": 0.35, "height": 0.12, "padding": 0.2,
           "color": "ffffff", "background": "0000ff"})
}

fn timer() -> Value {
    json!({"id": "timer", "kind": "timer", "since": "live", "x": 0.55, "y": 0.5, "height": 0.12, "padding": 0.2,
           "color": "ffffff", "background": "0000ff"})
}

/// The red participant alone on the grid: by grid.rs' rule, by hand, the cell is 632x352 (4 px gap around), 16:9
/// inside it 625.8 -> 624 (even) x 352, centred at (8, 4). Its label (default style): round(0.08 * 352) = 28 px
/// high, 14 px in from the tile's left and bottom edges: top-left (22, 4 + 352 - 14 - 28 = 314).
const GRID_TILE: Area = Area::new(8, 4, 624, 352);
const GRID_LABEL: LabelBox = LabelBox { x: 22, y: 314, h: 28 };

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

/// The lower third of the participant `id`: a yellow band (it shows on the red participant and on the black
/// canvas), its text on the band's left (name "red" and "CEO": under 120 px at these sizes).
fn lower_third(id: &str) -> Value {
    json!({"id": "who", "kind": "lower_third", "participant": id, "title": "CEO", "background": "ffff00",
           "fade_ms": 1000})
}

/// Where the band must be, from the templates' geometry (pipelines/layouts/, 640x360, gap 0.00625 of the width:
/// 4 px; `fit` templates keep tiles 16:9, centred in their cell) and the band's: the bottom 0.22 of the tile.
/// Points 6 px and more inside, clear of the band's text.
/// `grid` with one participant: the canvas less the gap, 16:9: about 626x352 at (7, 4); the band spans
/// y 277-356; above it, the red picture.
const GRID_BAND: [(i32, i32); 4] = [(320, 300), (320, 345), (600, 300), (600, 345)];
const GRID_ABOVE: [(i32, i32); 1] = [(320, 255)];
/// `side-by-side` with one participant: the left half less the gap, 16:9: about 312x176 at (4, 92); the band
/// spans y 229-268; above it the red picture; below the tile (where the grid's band was) and the right half, the
/// black canvas.
const SIDE_BAND: [(i32, i32); 3] = [(200, 240), (290, 240), (290, 262)];
const SIDE_ABOVE: [(i32, i32); 1] = [(160, 200)];
const SIDE_EMPTY: [(i32, i32); 3] = [(160, 320), (480, 300), (600, 345)];
/// Where the layout cross-fade is read: black in side-by-side's empty right half, red picture in the grid, clear
/// of the logo (ends at y 108), the clock (ends at x 352 + about 133) and the band (from y 277).
const CROSS_AT: (i32, i32) = (560, 150);
/// The point where the fade is read: in the grid band, over the red picture.
const FADE_AT: (i32, i32) = (320, 330);

/// The colour at `at` on every frame of `segment`, with its presentation time (seconds, the stream's clock: it
/// runs on across segments), read by ffprobe (times) and ffmpeg (a 2x2 crop, every frame as decoded).
fn samples(segment: &Path, at: (i32, i32)) -> Vec<(f64, [u8; 3])> {
    let pts = try_video_pts(segment.to_str().expect("path")).expect("ffprobe");
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(segment)
        .args(["-vf", &format!("crop=2:2:{}:{}", at.0, at.1)])
        .args(["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg");
    let colours: Vec<[u8; 3]> = out.stdout.chunks_exact(12).map(|c| [c[0], c[1], c[2]]).collect();
    assert_eq!(colours.len(), pts.len(), "frames of {}", segment.display());
    pts.into_iter().zip(colours).collect()
}

/// Red and yellow share the red channel: between them only green moves, 0 to 255. Strictly between, beyond
/// what encoding drifts, is blended.
fn blended(c: [u8; 3]) -> bool {
    c[0] > 255 - TOLERANCE && c[1] > TOLERANCE && c[1] < 255 - TOLERANCE
}

/// The clock or timer box at `at` (its first 100 columns and 42 rows: ffmpeg crops 4:2:0 pictures to even sizes)
/// on every frame of `segment`, as white-ish (text) or not per pixel, with the frame's presentation time.
fn text_masks(segment: &Path, at: (i32, i32)) -> Vec<(f64, Vec<bool>)> {
    let (w, h) = (100, 42);
    let (x, y) = at;
    // Each frame's time from `showinfo`, as decoded (a segment's packets and its decodable frames may differ).
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "info", "-nostats", "-copyts", "-i"])
        .arg(segment)
        .args(["-vf", &format!("crop={w}:{h}:{x}:{y},showinfo")])
        .args(["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg");
    let pts: Vec<f64> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.split("pts_time:").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect();
    let masks: Vec<Vec<bool>> = out
        .stdout
        .chunks_exact((w * h * 3) as usize)
        .map(|frame| frame.chunks_exact(3).map(|p| p.iter().all(|&c| c > 160)).collect())
        .collect();
    assert_eq!(masks.len(), pts.len(), "frames of {}", segment.display());
    assert!(masks.len() >= 20, "{} frames in {}", masks.len(), segment.display());
    pts.into_iter().zip(masks).collect()
}

/// Pixels of a text area that differ between two frames' masks for the text to count as changed: a digit drawn
/// anew turned 29 to 84 (measured), a text that stays turned none (the encode repeats a still box exactly).
const TEXT_CHANGED: usize = 12;

/// The text in `frames` (about 3 s) changes 2 to 4 times, each change 0.9 s to 1.1 s after the one before:
/// once a second, the same text on every frame between. Changes on consecutive frames count as one (the
/// encoder may settle a change over two frames).
fn ticks_once_a_second(what: &str, frames: &[(f64, Vec<bool>)]) {
    let diffs: Vec<(f64, usize)> = frames
        .windows(2)
        .map(|w| (w[1].0, w[0].1.iter().zip(&w[1].1).filter(|(a, b)| a != b).count()))
        .collect();
    let changed = |i: usize| diffs[i].1 >= TEXT_CHANGED;
    let changes: Vec<f64> = (0..diffs.len())
        .filter(|&i| changed(i) && (i == 0 || !changed(i - 1)))
        .map(|i| diffs[i].0)
        .collect();
    let quiet = diffs.iter().filter(|(_, d)| *d < TEXT_CHANGED).map(|(_, d)| *d).max();
    let shown = || format!("{what}: changes at {changes:?}; differing pixels per frame {diffs:?}");
    println!("{what}: text changes at {changes:?}, at most {quiet:?} pixels flicker between");
    assert!((2..=4).contains(&changes.len()), "{}", shown());
    for pair in changes.windows(2) {
        let apart = pair[1] - pair[0];
        assert!((0.9..=1.1).contains(&apart), "{apart:.3} s apart: {}", shown());
    }
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

/// Points in the padding of a clock or timer box at `at` (no glyph there): blue.
fn ticking_padding_points(at: (i32, i32)) -> Vec<(i32, i32)> {
    let (x, y, bottom) = (at.0, at.1, at.1 + TICKING_H - 1);
    vec![
        (x + 3, y + 3),
        (x + 3, bottom - 3),
        (x + 50, y + 3),
        (x + 80, bottom - 3),
        (x + 3, y + 21),
    ]
}

/// White-ish pixels in the text area of a clock or timer box at `at`.
fn ticking_text_pixels(frame: &Frame, at: (i32, i32)) -> usize {
    let (x0, y0) = (at.0 + TICKING_PAD, at.1 + TICKING_PAD);
    (y0..at.1 + TICKING_H - TICKING_PAD)
        .flat_map(|y| (x0..x0 + TICKING_TEXT_W).map(move |x| (x, y)))
        .filter(|&(x, y)| frame.pixel(x, y).iter().all(|&c| c > 200))
        .count()
}

fn title_and_logo_shown(frame: &Frame) -> Result<(), String> {
    colour_at(frame, &title_padding_points(), BLUE).map_err(|e| format!("title box: {e}"))?;
    for (what, at) in [("clock", CLOCK), ("timer", TIMER)] {
        colour_at(frame, &ticking_padding_points(at), BLUE).map_err(|e| format!("{what} box: {e}"))?;
        let white = ticking_text_pixels(frame, at);
        if white < 60 {
            return Err(format!("only {white} white text pixels in the {what}"));
        }
    }
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

    let bc = Broadcast::start(&server, &request(json!([title(), logo(), clock(), timer()])));
    poll_frame(
        &bc.playlist,
        "title, logo, clock and timer",
        Duration::from_secs(15),
        title_and_logo_shown,
    );
    // The clock and timer are read from the segments cut from now on, at the end.
    let ticking_from = listed_segments(&bc.playlist).len();

    let listed = |status: &Value| status["overlays"].clone();
    assert_eq!(
        listed(&bc.status()),
        json!([{"id": "title", "kind": "text"}, {"id": "logo", "kind": "image"},
               {"id": "clock", "kind": "clock"}, {"id": "timer", "kind": "timer"}]),
        "the status lists what is on air"
    );
    // One PATCH takes the title off and adds a lower third over the red participant, fading in over 1 s.
    // The title and logo show before the participant joins (on the black canvas): wait for them.
    let red_id = wait_for("the red participant on screen", Duration::from_secs(15), || {
        let status = bc.status();
        let participants = status["participants"].as_array()?.clone();
        let red = participants
            .iter()
            .find(|p| p["name"] == "red" && p["on_screen"] == true)?;
        Some(red["id"].as_str()?.to_string())
    });
    let red_tile = Tile::new("red", RED, GRID_TILE);
    poll_frame(
        &bc.playlist,
        "the red participant and their label",
        Duration::from_secs(10),
        |f| colour_at(f, &GRID_ABOVE, RED).and_then(|()| label_shown(f, &red_tile, GRID_LABEL)),
    );
    let before = listed_segments(&bc.playlist).len();
    assert!(before >= 1, "segments before the PATCH");
    let (code, body) = patch_broadcast(
        &server,
        &bc.id,
        json!({"overlays": [logo(), lower_third(&red_id), clock(), timer()]}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        listed(&body),
        json!([{"id": "logo", "kind": "image"}, {"id": "who", "kind": "lower_third"},
               {"id": "clock", "kind": "clock"}, {"id": "timer", "kind": "timer"}]),
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

    // The fade, frame by frame at one point of the band: segment `before - 1` was cut before the PATCH (only
    // frames from before); the fade starts in the segment being written then and ends about 1 s later, well
    // before the end of segment n+2.
    let listed = listed_segments(&bc.playlist);
    let n = n.max(before);
    let dir = bc.playlist.parent().expect("dir");
    let last_before = samples(&dir.join(&listed[before - 1]), FADE_AT).pop().expect("a frame");
    assert!(
        close_to(last_before.1, RED, TOLERANCE),
        "before the PATCH: {last_before:?}"
    );
    let fade: Vec<(f64, [u8; 3])> = listed[before..=n + 2]
        .iter()
        .flat_map(|s| samples(&dir.join(s), FADE_AT))
        .collect();
    let shown = || format!("{fade:?}");
    let between: Vec<f64> = fade.iter().filter(|(_, c)| blended(*c)).map(|(t, _)| *t).collect();
    let (first, last) = (between.first().copied(), between.last().copied());
    let (Some(first), Some(last)) = (first, last) else {
        panic!("no blended frame during the fade: {}", shown())
    };
    // 1 s at 30 fps is 30 frames; about 19 of them have green beyond the tolerance from both ends.
    assert!(between.len() >= 10, "{} blended frames: {}", between.len(), shown());
    assert!(last - first <= 1.1, "blended from {first} to {last}: {}", shown());
    let after: Vec<&(f64, [u8; 3])> = fade.iter().filter(|(t, _)| *t > last).collect();
    assert!(after.len() >= 10, "frames after the fade: {}", shown());
    assert!(
        after.iter().all(|(_, c)| close_to(*c, YELLOW, TOLERANCE)),
        "fully on after the fade: {}",
        shown()
    );
    poll_frame(
        &bc.playlist,
        "the band over the grid tile",
        Duration::from_secs(5),
        |f| colour_at(f, &GRID_BAND, YELLOW).and_then(|()| colour_at(f, &GRID_ABOVE, RED)),
    );
    // The template switched: the band follows the tile to the left half.
    let (code, body) = patch_broadcast(&server, &bc.id, json!({"layout": {"template": "side-by-side"}}));
    assert_eq!(code, 200, "{body}");
    poll_frame(
        &bc.playlist,
        "the band over the side-by-side tile",
        Duration::from_secs(8),
        |f| {
            colour_at(f, &SIDE_BAND, YELLOW)
                .and_then(|()| colour_at(f, &SIDE_ABOVE, RED))
                .and_then(|()| colour_at(f, &SIDE_EMPTY, BLACK))
        },
    );

    // Back to the grid, cross-fading over 1 s: at a point black before and red after, frames of red between
    // (read by pts across the segments around the PATCH); a transition out of range is refused first.
    let (code, body) = patch_broadcast(
        &server,
        &bc.id,
        json!({"layout": {"template": "grid", "transition": {"kind": "fade", "ms": 6000}}}),
    );
    assert_eq!(
        (code, body["field"].as_str()),
        (400, Some("layout.transition.ms")),
        "{body}"
    );
    let before = listed_segments(&bc.playlist).len();
    let (code, body) = patch_broadcast(
        &server,
        &bc.id,
        json!({"layout": {"template": "grid", "transition": {"kind": "fade", "ms": 1000}}}),
    );
    assert_eq!(code, 200, "{body}");
    let listed = wait_for("3 segments after the cross-fade", Duration::from_secs(8), || {
        let listed = listed_segments(&bc.playlist);
        (listed.len() >= before + 3).then_some(listed)
    });
    let frames: Vec<(f64, [u8; 3])> = listed[before.saturating_sub(1)..before + 3]
        .iter()
        .flat_map(|s| samples(&dir.join(s), CROSS_AT))
        .collect();
    let dark_red = |c: &[u8; 3]| c[1] < TOLERANCE && c[2] < TOLERANCE;
    let black = frames.iter().position(|(_, c)| close_to(*c, BLACK, TOLERANCE));
    let between = frames[black.unwrap_or(frames.len())..]
        .iter()
        .filter(|(_, c)| dark_red(c) && c[0] > TOLERANCE && c[0] < 255 - TOLERANCE)
        .count();
    assert!(between >= 10, "a cross-fade from black to red: {frames:?}");
    assert!(close_to(frames.last().expect("frames").1, RED, TOLERANCE), "{frames:?}");

    // Three segments (about 3 s) cut since the clock and timer showed: each changes about once a second.
    let listed = listed_segments(&bc.playlist);
    assert!(listed.len() >= ticking_from + 3, "{} segments", listed.len());
    for (what, at) in [("clock", CLOCK), ("timer", TIMER)] {
        let frames: Vec<(f64, Vec<bool>)> = listed[ticking_from..ticking_from + 3]
            .iter()
            .flat_map(|s| text_masks(&dir.join(s), at))
            .collect();
        ticks_once_a_second(what, &frames);
    }

    assert_eq!(bc.stop()["state"], "ended");
    let pts = video_pts(bc.playlist.to_str().expect("path"));
    let gap = max_gap(&pts);
    assert!(pts.len() > 30 * 3, "only {} frames", pts.len());
    assert!(gap < 0.1, "video gap of {gap:.3} s around the overlay change");
}
