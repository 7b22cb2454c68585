use super::*;

const W: usize = 640;
const H: usize = 360;
const MS: u64 = 1_764_162_000_123;

/// A busy luma picture (a diagonal ramp with a pseudo-random ripple) so reading never relies on a flat background.
fn picture() -> Vec<u8> {
    (0..W * H)
        .map(|i| ((i % W + i / W) * 3 + (i * 7919) % 23) as u8)
        .collect()
}

fn full(w: usize, h: usize) -> Rect {
    Rect {
        x: 0,
        y: 0,
        w: w as i32,
        h: h as i32,
    }
}

/// Box-downscales by an integer `factor` into a grey canvas at (`at_x`, `at_y`).
fn shrink_into(src: &[u8], factor: usize, canvas: (usize, usize), at_x: usize, at_y: usize) -> Vec<u8> {
    let mut out = vec![60u8; canvas.0 * canvas.1];
    for y in 0..H / factor {
        for x in 0..W / factor {
            let sum: usize = (0..factor * factor)
                .map(|k| usize::from(src[(y * factor + k / factor) * W + x * factor + k % factor]))
                .sum();
            out[(at_y + y) * canvas.0 + at_x + x] = (sum / (factor * factor)) as u8;
        }
    }
    out
}

#[test]
fn a_stamp_reads_back_exactly() {
    let mut plane = picture();
    assert!(stamp(&mut plane, W, W, H, MS));
    assert_eq!(read(&plane, W, full(W, H), (W, H)), Some(MS));
    assert_eq!(read(&picture(), W, full(W, H), (W, H)), None, "an unstamped picture");
}

#[test]
fn a_stamp_reads_back_scaled_to_a_half_and_a_third_inside_a_canvas() {
    let mut plane = picture();
    stamp(&mut plane, W, W, H, MS);
    for factor in [2, 3] {
        let canvas = (1280, 720);
        let (x, y) = (408, 250);
        let scaled = shrink_into(&plane, factor, canvas, x, y);
        let tile = Rect {
            x: x as i32,
            y: y as i32,
            w: (W / factor) as i32,
            h: (H / factor) as i32,
        };
        assert_eq!(read(&scaled, canvas.0, tile, (W, H)), Some(MS), "1/{factor}");
    }
}

#[test]
fn a_corrupted_stamp_does_not_read() {
    let mut plane = picture();
    stamp(&mut plane, W, W, H, MS);
    // Inverts one block of the time (row 2, column 5).
    let (x0, y0) = (MARGIN + 5 * BLOCK, MARGIN + 2 * BLOCK);
    for y in y0..y0 + BLOCK {
        for v in &mut plane[y * W + x0..y * W + x0 + BLOCK] {
            *v = if *v == WHITE { BLACK } else { WHITE };
        }
    }
    assert_eq!(read(&plane, W, full(W, H), (W, H)), None);
    // A grey smear over a block is ambiguous, not a guess.
    let mut smeared = picture();
    stamp(&mut smeared, W, W, H, MS);
    for y in MARGIN + BLOCK..MARGIN + 2 * BLOCK {
        smeared[y * W + MARGIN..y * W + MARGIN + BLOCK].fill(125);
    }
    assert_eq!(read(&smeared, W, full(W, H), (W, H)), None);
}

#[test]
fn the_tile_must_hold_the_whole_stamp() {
    let mut plane = picture();
    stamp(&mut plane, W, W, H, MS);
    let outside = Rect {
        x: 600,
        y: 0,
        w: 640,
        h: 360,
    };
    assert_eq!(read(&plane, W, outside, (W, H)), None);
    assert!(!stamp(&mut vec![0; 100 * 50], 100, 100, 50, MS), "too small to stamp");
}

#[test]
fn an_i420_frame_gets_neutral_chroma_under_the_stamp() {
    let mut frame = vec![200u8; W * H * 3 / 2];
    assert!(stamp_i420(&mut frame, W, H, MS));
    assert_eq!(read(&frame[..W * H], W, full(W, H), (W, H)), Some(MS));
    let u = W * H;
    assert_eq!(frame[u + 10 * (W / 2) + 10], NEUTRAL);
    assert_eq!(frame[u + W * H / 4 + 10 * (W / 2) + 10], NEUTRAL, "V");
    assert_eq!(
        frame[u + 170 * (W / 2) + 300],
        200,
        "chroma away from the stamp is left alone"
    );
}

/// Stamped test video through the publisher's VP8 at 500 kbps, scaled to a tile of a 1280x720 canvas, through
/// x264 at 2500 kbps and back: every frame reads back as the time it was stamped with.
fn through_x264(tile: Rect) {
    crate::gst_util::init().expect("GStreamer");
    let _glib = crate::glib_watch::watch();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc pattern=ball num-buffers=15 \
         ! video/x-raw,format=I420,width={W},height={H},framerate=30/1 ! identity name=stamp \
         ! vp8enc target-bitrate=500000 deadline=1 cpu-used=8 ! vp8dec ! videoscale ! video/x-raw,width={w},height={h} \
         ! videobox left=-{x} top=-{y} right=-{r} bottom=-{b} ! video/x-raw,width=1280,height=720 \
         ! x264enc bitrate=2500 speed-preset=veryfast tune=zerolatency ! avdec_h264 ! videoconvert \
         ! video/x-raw,format=I420 ! appsink name=out sync=false",
        w = tile.w,
        h = tile.h,
        x = tile.x,
        y = tile.y,
        r = 1280 - tile.x - tile.w,
        b = 720 - tile.y - tile.h,
    ))
    .expect("test pipeline")
    .downcast::<gst::Pipeline>()
    .expect("a pipeline");
    // Frame n carries MS + n (the encoder offsets timestamps, so they cannot name the frame).
    let stamped = std::sync::atomic::AtomicU64::new(MS);
    let stamper = pipeline.by_name("stamp").unwrap().static_pad("src").unwrap();
    stamper.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buffer) = info.buffer_mut() {
            let ms = stamped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut map = buffer.make_mut().map_writable().unwrap();
            assert!(stamp_i420(map.as_mut_slice(), W, H, ms));
        }
        gst::PadProbeReturn::Ok
    });
    let sink = pipeline.by_name("out").unwrap().downcast::<gst_app::AppSink>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut frames = 0;
    while let Ok(sample) = sink.pull_sample() {
        let buffer = sample.buffer().unwrap();
        let map = buffer.map_readable().unwrap();
        assert_eq!(
            read(&map[..1280 * 720], 1280, tile, (W, H)),
            Some(MS + frames),
            "frame {frames} in {tile:?}"
        );
        frames += 1;
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(frames, 15);
}

#[test]
fn a_stamp_survives_vp8_and_x264_in_a_16_tile_grid() {
    through_x264(Rect {
        x: 326,
        y: 190,
        w: 310,
        h: 174,
    });
}

#[test]
fn a_stamp_survives_vp8_and_x264_at_a_third() {
    through_x264(Rect {
        x: 8,
        y: 8,
        w: 214,
        h: 120,
    });
}

#[test]
fn a_looped_stamp_resolves_to_the_last_matching_instant_before_it_was_seen() {
    // Seen at 12:00:07.250 (epoch ms ending in ...7_250): a stamp of 7_100 was painted 150 ms earlier.
    let seen = 1_764_504_007_250;
    assert_eq!(resolve_looped(7_100, seen), 1_764_504_007_100);
    // A stamp of 9_900 is from the loop before: 9_900 - 7_250 = 2_650 ms after, so 7_350 ms before.
    assert_eq!(resolve_looped(9_900, seen), 1_764_503_999_900);
    // Painted in the very ms it was seen.
    assert_eq!(resolve_looped(7_250, seen), seen);
    // A wall-clock stamp is left as it is.
    assert_eq!(resolve_looped(1_764_504_007_000, seen), 1_764_504_007_000);
}
