//! Unit tests of `overlays`: every refusal names its field.

use super::*;
use serde_json::json;

fn parse(list: serde_json::Value) -> Vec<OverlayRequest> {
    serde_json::from_value(list).unwrap()
}

fn field_of(list: serde_json::Value) -> String {
    validate(parse(list)).unwrap_err().field
}

fn title() -> serde_json::Value {
    json!({"id": "title", "kind": "text", "text": "Town hall", "x": 0.03, "y": 0.04, "height": 0.08,
           "color": "ffffff", "background": "0000ff"})
}

/// A black `width` x `height` PNG as a data URL (tiny: it compresses to almost nothing).
fn grey_data_url(width: u32, height: u32) -> String {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(png::ColorType::Grayscale);
    let pixels = vec![0u8; (width * height) as usize];
    encoder.write_header().unwrap().write_image_data(&pixels).unwrap();
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

#[test]
fn images_over_8_mpx_together_are_refused_at_the_one_that_exceeds() {
    let image = |w: u32, h: u32| json!({"kind": "image", "data": grey_data_url(w, h), "x": 0, "y": 0, "height": 0.1});
    // 2048x2048 is 4 Mpx: two fit exactly, a third pixel does not.
    let two = json!([image(2048, 2048), image(2048, 2048)]);
    assert!(validate(parse(two)).is_ok());
    let three = json!([image(2048, 2048), image(2048, 2048), image(1, 1)]);
    assert_eq!(field_of(three), "overlays[2].data");
    // A file counts with the data images.
    let dir = tempfile::tempdir().unwrap();
    let png = grey_data_url(1, 1);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(png.strip_prefix("data:image/png;base64,").unwrap())
        .unwrap();
    std::fs::write(dir.path().join("dot.png"), bytes).unwrap();
    let local = Assets::new(dir.path().to_path_buf());
    let file = json!({"kind": "image", "file": "dot.png", "x": 0, "y": 0, "height": 0.1});
    let full = validate(parse(json!([image(2048, 2048), image(2048, 2048), file.clone()]))).unwrap();
    assert_eq!(check_files(&full, &local).unwrap_err().field, "overlays[2].file");
    let fits = validate(parse(json!([image(2048, 2048), file]))).unwrap();
    assert!(check_files(&fits, &local).is_ok());
}

/// A 1x1 opaque green PNG, made with the `png` crate.
fn png_data_url() -> String {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, 1, 1);
    encoder.set_color(png::ColorType::Rgb);
    encoder.write_header().unwrap().write_image_data(&[0, 255, 0]).unwrap();
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

#[test]
fn a_title_and_a_logo_are_accepted() {
    let logo = json!({"id": "logo", "kind": "image", "data": png_data_url(), "x": 0.85, "y": 0.04,
                      "height": 0.12, "opacity": 0.9});
    let overlays = validate(parse(json!([title(), logo]))).unwrap();
    assert_eq!(overlays.len(), 2);
    assert_eq!(overlays[0].id, "title");
    match &overlays[0].look {
        Look::Text { color, background, .. } => {
            assert_eq!((*color, *background), ([255, 255, 255, 255], [0, 0, 255, 255]));
        }
        other => panic!("{other:?}"),
    }
    let assets = Assets::new(std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/assets")));
    match overlays[1].drawing(&assets, not_live()).map(|d| d.content) {
        Some(Content::Image(image)) => assert_eq!(image.get_pixel(0, 0).0, [0, 255, 0, 255]),
        other => panic!("{other:?}"),
    }
    assert_eq!(overlays[1].opacity, 0.9);
}

#[test]
fn each_bad_field_is_named() {
    let with = |key: &str, value: serde_json::Value| {
        let mut t = title();
        t[key] = value;
        json!([title_with_id("a"), title_with_id("b"), t])
    };
    assert_eq!(field_of(with("x", json!(1.5))), "overlays[2].x");
    assert_eq!(field_of(with("y", json!(-0.1))), "overlays[2].y");
    assert_eq!(field_of(with("height", json!(0.0))), "overlays[2].height");
    assert_eq!(field_of(with("height", json!(1.01))), "overlays[2].height");
    assert_eq!(field_of(with("opacity", json!(2))), "overlays[2].opacity");
    assert_eq!(field_of(with("text", json!("x".repeat(201)))), "overlays[2].text");
    assert_eq!(field_of(with("text", json!(""))), "overlays[2].text");
    assert_eq!(field_of(with("color", json!("fff"))), "overlays[2].color");
    assert_eq!(field_of(with("background", json!("0000zz"))), "overlays[2].background");
    assert_eq!(field_of(with("padding", json!(0.5))), "overlays[2].padding");
    assert_eq!(field_of(with("id", json!("a"))), "overlays[2].id");
    // 200 characters (not bytes) is still fine, accents, CJK and emoji included.
    assert!(validate(parse(with("text", json!("é".repeat(200))))).is_ok());
    assert!(validate(parse(with("text", json!("Café 東京 🎉 👩‍💻")))).is_ok());
}

fn title_with_id(id: &str) -> serde_json::Value {
    let mut t = title();
    t["id"] = json!(id);
    t
}

#[test]
fn more_than_sixteen_overlays_are_refused() {
    let list = |n: usize| json!((0..n).map(|i| title_with_id(&format!("t{i}"))).collect::<Vec<_>>());
    assert!(validate(parse(list(MAX_OVERLAYS))).is_ok());
    assert_eq!(field_of(list(MAX_OVERLAYS + 1)), "overlays");
}

#[test]
fn bad_image_data_is_refused_by_field() {
    let image = |data: &str| json!([{"kind": "image", "data": data, "x": 0, "y": 0, "height": 0.1}]);
    for bad in [
        "https://example.com/logo.png",
        "data:image/png;base64,!!!",
        "data:image/png;base64,aGVsbG8=",
        "data:image/gif;base64,R0lGODlhAQABAAAAACw=",
    ] {
        assert_eq!(field_of(image(bad)), "overlays[0].data", "{bad}");
    }
    let both = json!([{"kind": "image", "data": png_data_url(), "file": "a.png", "x": 0, "y": 0, "height": 0.1}]);
    assert_eq!(field_of(both), "overlays[0].data");
}

#[test]
fn a_file_outside_the_assets_dir_or_missing_is_refused_by_field() {
    let assets = Assets::new(std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/assets")));
    for name in ["../Cargo.toml", "nope.png", "fonts/LICENSE-DejaVu.txt"] {
        let list = json!([{"kind": "image", "file": name, "x": 0, "y": 0, "height": 0.1}]);
        let overlays = validate(parse(list)).unwrap();
        assert_eq!(
            check_files(&overlays, &assets).unwrap_err().field,
            "overlays[0].file",
            "{name}"
        );
    }
}

#[test]
fn ids_default_to_the_index() {
    let mut untitled = title();
    untitled.as_object_mut().unwrap().remove("id");
    let overlays = validate(parse(json!([title(), untitled]))).unwrap();
    assert_eq!(overlays[1].id, "overlay-1");
}

#[test]
fn a_lower_third_for_a_participant_not_in_the_call_is_accepted_with_its_defaults() {
    let third = json!({"kind": "lower_third", "participant": "p-nobody-yet", "title": "Head of product"});
    let overlays = validate(parse(json!([third]))).unwrap();
    assert_eq!(overlays[0].shown().kind, "lower_third");
    assert_eq!(overlays[0].fade_ms, 300);
    match &overlays[0].look {
        Look::LowerThird {
            participant,
            title,
            color,
            background,
        } => assert_eq!(
            (participant.as_str(), title.as_str(), *color, *background),
            ("p-nobody-yet", "Head of product", [255, 255, 255, 255], [0, 0, 0, 204])
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_bad_lower_third_names_its_field() {
    let with = |key: &str, value: serde_json::Value| {
        let mut third = json!({"kind": "lower_third", "participant": "p-1", "title": "CEO"});
        third[key] = value;
        json!([title(), third])
    };
    assert_eq!(field_of(with("title", json!(""))), "overlays[1].title");
    assert_eq!(field_of(with("title", json!("x".repeat(101)))), "overlays[1].title");
    assert!(validate(parse(with("title", json!("x".repeat(100))))).is_ok());
    assert_eq!(field_of(with("participant", json!(""))), "overlays[1].participant");
    assert_eq!(field_of(with("color", json!("white"))), "overlays[1].color");
    assert_eq!(field_of(with("background", json!("12345"))), "overlays[1].background");
    assert_eq!(field_of(with("fade_ms", json!(5001))), "overlays[1].fade_ms");
}

#[test]
fn fade_ms_is_0_to_5000_on_every_kind() {
    let mut text = title();
    text["fade_ms"] = json!(0);
    let mut image = json!({"kind": "image", "data": png_data_url(), "x": 0, "y": 0, "height": 0.1});
    image["fade_ms"] = json!(5000);
    let overlays = validate(parse(json!([text.clone(), image.clone()]))).unwrap();
    assert_eq!((overlays[0].fade_ms, overlays[1].fade_ms), (0, 5000));
    text["fade_ms"] = json!(5001);
    assert_eq!(field_of(json!([text])), "overlays[0].fade_ms");
    image["fade_ms"] = json!(9000);
    assert_eq!(field_of(json!([title(), image])), "overlays[1].fade_ms");
}

fn not_live() -> Moment {
    Moment {
        now: std::time::UNIX_EPOCH,
        live_since: None,
    }
}

#[test]
fn a_clock_and_a_timer_are_accepted_with_their_defaults_and_draw_their_text() {
    let list = json!([{"kind": "clock", "format": "%H:%M %Z", "timezone": "+01:00", "x": 0.8},
                      {"kind": "timer", "since": "live"}]);
    let overlays = validate(parse(list)).unwrap();
    let kinds: Vec<String> = overlays.iter().map(|o| o.shown().kind).collect();
    assert_eq!(kinds, ["clock", "timer"]);
    assert_eq!((overlays[0].x, overlays[0].y, overlays[0].height), (0.8, 0.03, 0.06));
    // 2026-11-30 19:23:01 UTC, live since 19:20:00.
    let at = Moment {
        now: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_066_581),
        live_since: Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_066_400)),
    };
    assert_eq!(overlays[0].ticking_text(at).as_deref(), Some("20:23 +01:00"));
    assert_eq!(overlays[1].ticking_text(at).as_deref(), Some("0:03:01"));
    let assets = Assets::new(std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/assets")));
    match overlays[1].drawing(&assets, at).map(|d| d.content) {
        Some(Content::Text { text, background, .. }) => {
            assert_eq!((text.as_str(), background), ("0:03:01", [0, 0, 0, 204]))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(overlays[0].ticking_text(not_live()).as_deref(), Some("01:00 +01:00"));
    // A named zone: Paris is on CET (UTC+1) on 30 November.
    let paris = json!([{"kind": "clock", "format": "%H:%M %Z", "timezone": "Europe/Paris"}]);
    let paris = validate(parse(paris)).unwrap();
    assert_eq!(paris[0].ticking_text(at).as_deref(), Some("20:23 CET"));
    assert_eq!(validate(parse(json!([title()]))).unwrap()[0].ticking_text(at), None);
}

#[test]
fn a_bad_clock_or_timer_names_its_field() {
    let clock = |key: &str, value: serde_json::Value| {
        let mut c = json!({"kind": "clock"});
        c[key] = value;
        json!([title(), c])
    };
    assert_eq!(field_of(clock("format", json!("%H:%M:%k"))), "overlays[1].format");
    assert_eq!(field_of(clock("format", json!(""))), "overlays[1].format");
    assert_eq!(
        field_of(clock("timezone", json!("Europe/Pariss"))),
        "overlays[1].timezone"
    );
    assert_eq!(field_of(clock("x", json!(1.5))), "overlays[1].x");
    assert_eq!(field_of(clock("height", json!(0))), "overlays[1].height");
    assert_eq!(field_of(clock("color", json!("white"))), "overlays[1].color");
    assert_eq!(field_of(clock("fade_ms", json!(9000))), "overlays[1].fade_ms");
    assert_eq!(
        field_of(json!([{"kind": "timer", "since": "start"}])),
        "overlays[0].since"
    );
    assert_eq!(field_of(json!([{"kind": "timer", "id": "a\u{1}b"}])), "overlays[0].id");
}
