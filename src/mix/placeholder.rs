//! The picture of a participant without video (audio only, camera off, video stalled): a solid colour derived
//! from their name, which the tile's label then names. One frame, made once, pushed about once a second.

pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 360;

/// A stable, pleasant colour for a name (0xRRGGBB): the hue comes from the name, saturation and value are fixed.
pub fn colour_for(name: &str) -> u32 {
    // FNV-1a: stable across runs and platforms.
    let hash = name
        .bytes()
        .fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    let hue = f64::from(hash % 360);
    let (s, v) = (0.55, 0.75);
    let c = v * s;
    let x = c * (1.0 - ((hue / 60.0) % 2.0 - 1.0).abs());
    let (r, g, b) = match (hue / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    let byte = |f: f64| ((f + m) * 255.0).round() as u32;
    (byte(r) << 16) | (byte(g) << 8) | byte(b)
}

/// Y, U, V (BT.601, limited range) of 0xRRGGBB.
fn yuv(rgb: u32) -> [u8; 3] {
    let (r, g, b) = (
        f64::from((rgb >> 16) & 0xff),
        f64::from((rgb >> 8) & 0xff),
        f64::from(rgb & 0xff),
    );
    let y = 16.0 + 0.257 * r + 0.504 * g + 0.098 * b;
    let u = 128.0 - 0.148 * r - 0.291 * g + 0.439 * b;
    let v = 128.0 + 0.439 * r - 0.368 * g - 0.071 * b;
    [y, u, v].map(|c| c.round().clamp(0.0, 255.0) as u8)
}

/// An I420 frame of the name's colour and its caps.
pub fn frame(name: &str) -> (gst::Buffer, gst::Caps) {
    // 640 and 320 are multiples of 4, so GStreamer's default I420 strides equal the widths: planes are packed.
    let caps = super::still::i420_caps(WIDTH, HEIGHT);
    let [y, u, v] = yuv(colour_for(name));
    let luma = (WIDTH * HEIGHT) as usize;
    let chroma = luma / 4;
    let mut data = vec![y; luma];
    data.extend(std::iter::repeat_n(u, chroma));
    data.extend(std::iter::repeat_n(v, chroma));
    (gst::Buffer::from_mut_slice(data), caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_stable_and_differ() {
        assert_eq!(colour_for("alice"), colour_for("alice"));
        assert_ne!(colour_for("alice"), colour_for("bob"));
        let c = colour_for("carol");
        let max = [(c >> 16) & 0xff, (c >> 8) & 0xff, c & 0xff].into_iter().max().unwrap();
        assert!(max >= 180, "too dark: {c:06x}");
    }

    #[test]
    fn frame_is_i420_of_the_right_size() {
        let _glib = crate::glib_watch::watch();
        let (buffer, caps) = frame("dave");
        assert_eq!(buffer.size(), (WIDTH * HEIGHT * 3 / 2) as usize);
        assert_eq!(caps.structure(0).unwrap().get::<&str>("format").unwrap(), "I420");
    }
}
