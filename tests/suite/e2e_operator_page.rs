//! The operator page in real headless Chromium: with the API token it starts a broadcast from the form, its
//! preview plays, the grid and then the layout it switches to show in decoded output frames (the participants'
//! colours where worked out by hand); its graphics controls put a title, the logo and a lower third on air (the
//! status lists them; the title box and the logo show in output frames where worked out by hand) and take the
//! title and the logo off again; and stop ends it.

use crate::support::broadcast::participant_names;
use crate::support::media::{close_to, decode_last_frame, Frame};
use crate::support::picture::{all, check, Area, ColourAt, Tile};
use crate::support::{browser_script, http, publish_with, KillOnDrop, Server};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TOKEN: &str = "operator-token-1c9d";

const BLACK: [u8; 3] = [0, 0, 0];
const WHITE: [u8; 3] = [255, 255, 255];
/// The page's title box (assets/index.html: `TITLE_STYLE`) and logo (`logoDataUrl`: #e65100 behind white text).
const TITLE_BLUE: [u8; 3] = [0x1f, 0x5f, 0xae];
const LOGO_ORANGE: [u8; 3] = [0xe6, 0x51, 0x00];
/// The title at x 0.03, y 0.04, 0.08 high of 640x360: from (19, 14), 29 px high; its width follows "Town hall"
/// (well over 60 px). Looked at: its first 60 px, where the box colour and the text's white must both show.
const TITLE_START: (i32, i32, i32, i32) = (19, 14, 60, 29);
/// Around it, the black canvas (the speaker template's large tile starts at x 78).
const AROUND_TITLE: [(i32, i32); 3] = [(16, 28), (30, 10), (30, 47)];
/// The logo, a 160x80 picture at x 0.86, y 0.04, 0.1 high: from (550, 14), 72x36. Its text sits in its middle
/// rows (12-24 of 36); corners of the top and bottom rows are orange.
const LOGO_PROBES: [(i32, i32); 5] = [(553, 17), (586, 17), (619, 17), (553, 47), (619, 47)];
const AROUND_LOGO: [(i32, i32); 2] = [(626, 32), (600, 54)];

fn colour(name: &str) -> [u8; 3] {
    match name {
        "red" => [255, 0, 0],
        "blue" => [0, 0, 255],
        other => panic!("unexpected participant {other}"),
    }
}

fn newest_frame(playlist: &Path) -> Result<Frame, String> {
    let text = std::fs::read_to_string(playlist).map_err(|e| format!("playlist: {e}"))?;
    let newest = playlist
        .parent()
        .expect("dir")
        .join(text.lines().rfind(|l| l.ends_with(".ts")).ok_or("no segment yet")?);
    decode_last_frame(&newest, 640, 360)
}

/// The tiles and background points `template` must show at 640x360 for two participants (`order`, the
/// status' on-screen order, `featured` first in the speaker template), worked out by hand from
/// pipelines/layouts/ (never by the layout engine).
fn by_hand(template: &str, order: &[String], featured: &str) -> (Vec<Tile>, Vec<ColourAt>) {
    let tile = |name: &str, area: Area| Tile::new(name, colour(name), area);
    match template {
        // grid.toml: fit 16:9, gap 0.00625 x 640 = 4 px, black. Side by side beats one above the other: cells
        // (640 - 3*4)/2 = 314 by 360 - 2*4 = 352, 16:9 inside 314 x 176 (314*9/16 = 176.6, even), against
        // 308 x 174 in two rows. The block 632 x 176 centred: x 4 and 322, y (360 - 176)/2 = 92.
        "grid" => (
            vec![
                tile(&order[0], Area::new(4, 92, 314, 176)),
                tile(&order[1], Area::new(322, 92, 314, 176)),
            ],
            // The gap between the two (x 318-321), above and below them.
            all(&[(320, 180), (160, 40), (480, 320)], BLACK),
        ),
        // speaker.toml: fit, gap 4 px, black. `speaker` region 0,0 to 1 x 0.78 = 640 x 281 px: cell 632 x 273, 16:9
        // inside 484 x 272 (273*16/9 = 485.3, both even) centred at 78,4. `others` row from y 281, 79 px high,
        // one cell 632 x 71: 126 x 70 (71*16/9 = 126.2) centred: x (640 - 126)/2 = 257, y 281 + (79 - 70)/2 = 285.
        "speaker" => {
            let other = order.iter().find(|n| *n != featured).expect("the other participant");
            (
                vec![
                    tile(featured, Area::new(78, 4, 484, 272)),
                    tile(other, Area::new(257, 285, 126, 70)),
                ],
                // Beside the large tile, between it and the strip (y 276-284), beside the small tile.
                all(&[(40, 140), (600, 140), (320, 280), (200, 320), (440, 320)], BLACK),
            )
        }
        other => panic!("no picture worked out for {other}"),
    }
}

/// Polls until the newest segment shows `template`'s arrangement of the participants, as the status orders them.
fn wait_for_arrangement(server: &Server, id: &str, playlist: &Path, template: &str) {
    let mut last = String::new();
    // Generous: on a loaded machine a participant was seen joining 11 s after the broadcast started.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let status: Value = http()
            .get(server.url(&format!("/v1/broadcasts/{id}")))
            .bearer_auth(TOKEN)
            .send()
            .and_then(|r| r.json())
            .expect("GET broadcast");
        let order = participant_names(&status);
        let featured = status["speaker"].as_str().and_then(|speaker| {
            let ps = status["participants"].as_array()?;
            ps.iter().find(|p| p["id"] == speaker)?["name"].as_str()
        });
        let featured = featured.or(order.first().map(String::as_str)).unwrap_or("");
        last = match (
            status["layout"]["template"].as_str(),
            order.len(),
            newest_frame(playlist),
        ) {
            (Some(t), 2, Ok(frame)) if t == template => {
                let (tiles, points) = by_hand(template, &order, featured);
                match check(&frame, &tiles, &points) {
                    Ok(()) => return,
                    Err(e) => format!("{order:?}: {e}"),
                }
            }
            (t, _, frame) => format!("template {t:?}, participants {order:?}, frame {:?}", frame.err()),
        };
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("{template} never on air: {last}");
}

fn overlays_listed(server: &Server, id: &str) -> Vec<(String, String)> {
    let status: Value = http()
        .get(server.url(&format!("/v1/broadcasts/{id}")))
        .bearer_auth(TOKEN)
        .send()
        .and_then(|r| r.json())
        .expect("GET broadcast");
    status["overlays"]
        .as_array()
        .expect("overlays")
        .iter()
        .map(|o| {
            (
                o["id"].as_str().unwrap_or("").to_string(),
                o["kind"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// What is wrong with the title box and the logo in `frame`, if anything.
fn graphics_wrong(frame: &Frame) -> Option<String> {
    let (x0, y0, w, h) = TITLE_START;
    let pixels: Vec<[u8; 3]> = (y0..y0 + h)
        .flat_map(|y| (x0..x0 + w).map(move |x| frame.pixel(x, y)))
        .collect();
    let boxed = pixels.iter().filter(|&&p| close_to(p, TITLE_BLUE, 40)).count();
    let text = pixels.iter().filter(|&&p| close_to(p, WHITE, 40)).count();
    let mut wrong = Vec::new();
    if boxed < pixels.len() / 2 || text < 40 {
        wrong.push(format!("title: {boxed} box and {text} text pixels of {}", pixels.len()));
    }
    let points = [
        all(&AROUND_TITLE, BLACK),
        all(&LOGO_PROBES, LOGO_ORANGE),
        all(&AROUND_LOGO, BLACK),
    ]
    .concat();
    if let Err(e) = check(frame, &[], &points) {
        wrong.push(e);
    }
    (!wrong.is_empty()).then(|| wrong.join("; "))
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
    // The page's grid: the two participants' colours side by side.
    wait_for_arrangement(&server, &id, &playlist, "grid");

    writeln!(stdin, "switch").expect("tell the page to switch");
    next("switched");
    // The speaker template: the first one large across the top, the other small below.
    wait_for_arrangement(&server, &id, &playlist, "speaker");

    // The graphics controls: each a PATCH, the status lists what they put on air.
    writeln!(stdin, "graphics").expect("tell the page to put graphics on");
    let participant = next("graphics")["participant"]
        .as_str()
        .expect("participant")
        .to_string();
    let third = format!("lower-third-{participant}");
    let kinds = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    };
    assert_eq!(
        overlays_listed(&server, &id),
        kinds(&[("title", "text"), ("logo", "image"), (&third, "lower_third")])
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let wrong = match newest_frame(&playlist) {
            Ok(frame) => graphics_wrong(&frame),
            Err(e) => Some(e),
        };
        let Some(wrong) = wrong else { break };
        assert!(
            Instant::now() < deadline,
            "the title and the logo never on air: {wrong}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    writeln!(stdin, "clear").expect("tell the page to take them off");
    next("cleared");
    assert_eq!(overlays_listed(&server, &id), kinds(&[(&third, "lower_third")]));

    writeln!(stdin, "stop").expect("tell the page to stop");
    next("ended");
    let text = std::fs::read_to_string(&playlist).expect("playlist");
    assert!(text.contains("#EXT-X-ENDLIST"));
    drop(browser);
}
