//! Overlay pictures in the canvas's own layout (I420 planes with their alpha, converted once per change) and
//! their blend into a frame, in place: per frame, only a weighted sum of bytes under each picture.
//!
//! Why not GStreamer's blend (`overlaycomposition`, `gst_video_blend` in 1.22): for every line of a rectangle it
//! unpacks and repacks the whole width of the frame, converts the rectangle's RGB to YUV again, and divides per
//! pixel; measured here (`callcast bench --overlay-blend`) a 1280x720 title and logo cost 0.02 core, and a
//! cross-fade's full-frame picture a third of a core at 720p. The same blends here cost a small fraction of that.

use gst_video::prelude::*;

/// A picture ready to blend: its top-left corner on even coordinates and even sides (chroma pairs line up with the
/// frame's), padded with transparent pixels where the RGBA picture was not.
pub struct Planes {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    luma: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
    /// Per luma pixel and per chroma pixel (the mean of its four), 0..=256; None: opaque everywhere (a frame).
    alpha: Option<(Vec<u16>, Vec<u16>)>,
}

/// 0..=255 as 0..=256, so that a full alpha keeps the source exactly: `(d * (256 - a) + s * a) >> 8`.
fn widen(a: u8) -> u16 {
    u16::from(a) + u16::from(a >> 7)
}

/// BT.601 limited range, the canvas's colorimetry (`CANVAS_COLORIMETRY`).
fn yuv(r: u8, g: u8, b: u8) -> (u8, u8, u8) {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
    let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
    let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
    (y.clamp(0, 255) as u8, u.clamp(0, 255) as u8, v.clamp(0, 255) as u8)
}

impl Planes {
    /// `picture` (straight alpha) with its top-left corner at (`x`, `y`) on the canvas.
    pub fn of_rgba(picture: &image::RgbaImage, x: u32, y: u32) -> Self {
        let (left, top) = (x % 2, y % 2);
        let width = (picture.width() + left).div_ceil(2) * 2;
        let height = (picture.height() + top).div_ceil(2) * 2;
        let (w, h) = (width as usize, height as usize);
        let mut luma = vec![16u8; w * h];
        let mut alpha = vec![0u16; w * h];
        // Colour per pixel, kept for the chroma means.
        let mut uv = vec![(128i32, 128i32); w * h];
        for (px, py, p) in picture.enumerate_pixels() {
            let i = (py + top) as usize * w + (px + left) as usize;
            let [r, g, b, a] = p.0;
            let (yy, u, v) = yuv(r, g, b);
            luma[i] = yy;
            alpha[i] = widen(a);
            uv[i] = (i32::from(u), i32::from(v));
        }
        let (cw, ch) = (w / 2, h / 2);
        let (mut u, mut v, mut chroma_alpha) = (vec![128u8; cw * ch], vec![128u8; cw * ch], vec![0u16; cw * ch]);
        for cy in 0..ch {
            for cx in 0..cw {
                let four = [(0, 0), (1, 0), (0, 1), (1, 1)].map(|(dx, dy)| (2 * cy + dy) * w + 2 * cx + dx);
                let weight: i32 = four.iter().map(|&i| i32::from(alpha[i])).sum();
                let c = cy * cw + cx;
                chroma_alpha[c] = ((weight + 2) / 4) as u16;
                if weight > 0 {
                    // Alpha-weighted: a letter's colour, not the average with the transparent pixels beside it.
                    let mean = |f: fn(&(i32, i32)) -> i32| {
                        (four.iter().map(|&i| f(&uv[i]) * i32::from(alpha[i])).sum::<i32>() + weight / 2) / weight
                    };
                    u[c] = mean(|p| p.0) as u8;
                    v[c] = mean(|p| p.1) as u8;
                }
            }
        }
        Self {
            x: x - left,
            y: y - top,
            width,
            height,
            luma,
            u,
            v,
            alpha: Some((alpha, chroma_alpha)),
        }
    }

    /// A copy of an I420 `frame`, opaque, covering it: what a layout cross-fade fades out from.
    pub fn of_frame(frame: &gst_video::VideoFrameRef<&gst::BufferRef>) -> anyhow::Result<Self> {
        anyhow::ensure!(
            frame.format() == gst_video::VideoFormat::I420,
            "a {:?} frame (the canvas is I420)",
            frame.format()
        );
        let (width, height) = (frame.width(), frame.height());
        let copy = |plane: u32, w: usize, h: usize| -> anyhow::Result<Vec<u8>> {
            let data = frame.plane_data(plane)?;
            let stride = frame.plane_stride()[plane as usize] as usize;
            Ok((0..h)
                .flat_map(|row| &data[row * stride..row * stride + w])
                .copied()
                .collect())
        };
        let (w, h) = (width as usize, height as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        Ok(Self {
            x: 0,
            y: 0,
            width,
            height,
            luma: copy(0, w, h)?,
            u: copy(1, cw, ch)?,
            v: copy(2, cw, ch)?,
            alpha: None,
        })
    }

    /// Blends this picture at `global` alpha (0..1) over an I420 `frame`, in place; what falls outside is cut.
    pub fn blend(&self, frame: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>, global: f64) {
        let g = (global.clamp(0.0, 1.0) * 256.0).round() as u16;
        if g == 0 {
            return;
        }
        let (fw, fh) = (frame.width(), frame.height());
        for plane in 0..3u32 {
            let shift = u32::from(plane > 0);
            let (src, alpha) = match plane {
                0 => (&self.luma, self.alpha.as_ref().map(|a| &a.0)),
                1 => (&self.u, self.alpha.as_ref().map(|a| &a.1)),
                _ => (&self.v, self.alpha.as_ref().map(|a| &a.1)),
            };
            let sw = (self.width as usize).div_ceil(1 << shift);
            let (x0, y0) = ((self.x >> shift) as usize, (self.y >> shift) as usize);
            let plane_w = (fw as usize).div_ceil(1 << shift);
            let plane_h = (fh as usize).div_ceil(1 << shift);
            let sh = (self.height as usize).div_ceil(1 << shift);
            if x0 >= plane_w || y0 >= plane_h {
                continue;
            }
            let cols = sw.min(plane_w - x0);
            let rows = sh.min(plane_h - y0);
            let stride = frame.plane_stride()[plane as usize] as usize;
            let Ok(data) = frame.plane_data_mut(plane) else {
                continue;
            };
            for row in 0..rows {
                let dst = &mut data[(y0 + row) * stride + x0..][..cols];
                let s = &src[row * sw..][..cols];
                match alpha {
                    Some(alpha) => over(dst, s, &alpha[row * sw..][..cols], g),
                    None => mix(dst, s, g),
                }
            }
        }
    }
}

/// `s` over `d`, each pixel at its alpha (0..=256) times `g` (0..=256).
fn over(d: &mut [u8], s: &[u8], alpha: &[u16], g: u16) {
    for ((d, &s), &a) in d.iter_mut().zip(s).zip(alpha) {
        let a = if g == 256 { a } else { (a * g + 128) >> 8 };
        *d = ((u16::from(*d) * (256 - a) + u16::from(s) * a) >> 8) as u8;
    }
}

/// `s` over `d` at one alpha `g` (0..=256).
fn mix(d: &mut [u8], s: &[u8], g: u16) {
    for (d, &s) in d.iter_mut().zip(s) {
        *d = ((u16::from(*d) * (256 - g) + u16::from(s) * g) >> 8) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn black_frame(w: u32, h: u32) -> (gst::Buffer, gst_video::VideoInfo) {
        gst::init().unwrap();
        let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, w, h)
            .build()
            .unwrap();
        let mut buffer = gst::Buffer::with_size(info.size()).unwrap();
        {
            let mut map = buffer.get_mut().unwrap().map_writable().unwrap();
            let luma = (w * h) as usize;
            map[..luma].fill(16);
            map[luma..].fill(128);
        }
        (buffer, info)
    }

    fn pixel(buffer: &gst::Buffer, info: &gst_video::VideoInfo, x: u32, y: u32) -> (u8, u8, u8) {
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), info).unwrap();
        let at = |plane: u32, x: u32, y: u32| {
            frame.plane_data(plane).unwrap()[(y * frame.plane_stride()[plane as usize] as u32 + x) as usize]
        };
        (at(0, x, y), at(1, x / 2, y / 2), at(2, x / 2, y / 2))
    }

    /// Studio-range BT.601 values of pure colours, from the standard's table (not from `yuv`).
    #[test]
    fn an_opaque_picture_lands_at_its_place_in_the_canvas_colours_and_nothing_beside_it() {
        let (mut buffer, info) = black_frame(64, 32);
        let picture = image::RgbaImage::from_pixel(5, 3, image::Rgba([0, 0, 255, 255]));
        let planes = Planes::of_rgba(&picture, 11, 7);
        {
            let mut frame =
                gst_video::VideoFrameRef::from_buffer_ref_writable(buffer.get_mut().unwrap(), &info).unwrap();
            planes.blend(&mut frame, 1.0);
        }
        // Blue: Y 41, Cb 240, Cr 110 (within rounding).
        let (y, u, v) = pixel(&buffer, &info, 12, 8);
        assert!(
            (40..=42).contains(&y) && (239..=240).contains(&u) && (109..=111).contains(&v),
            "{y} {u} {v}"
        );
        assert_eq!(pixel(&buffer, &info, 11, 7).0, y, "the top-left corner");
        assert_eq!(pixel(&buffer, &info, 15, 9).0, y, "the bottom-right corner");
        assert_eq!(pixel(&buffer, &info, 10, 7).0, 16, "left of it");
        assert_eq!(pixel(&buffer, &info, 16, 9).0, 16, "right of it");
        assert_eq!(pixel(&buffer, &info, 11, 10).0, 16, "below it");
    }

    #[test]
    fn alpha_and_global_alpha_weigh_the_picture_against_the_frame() {
        let (mut buffer, info) = black_frame(16, 16);
        // White (Y 235) at half alpha, then at half global alpha: 16 + (235 - 16) / 2 and / 4.
        let half = image::RgbaImage::from_pixel(4, 4, image::Rgba([255, 255, 255, 128]));
        let opaque = image::RgbaImage::from_pixel(4, 4, image::Rgba([255, 255, 255, 255]));
        {
            let mut frame =
                gst_video::VideoFrameRef::from_buffer_ref_writable(buffer.get_mut().unwrap(), &info).unwrap();
            Planes::of_rgba(&half, 0, 0).blend(&mut frame, 1.0);
            Planes::of_rgba(&opaque, 8, 8).blend(&mut frame, 0.25);
        }
        let half_y = pixel(&buffer, &info, 1, 1).0;
        assert!((125..=127).contains(&half_y), "{half_y}");
        let quarter_y = pixel(&buffer, &info, 9, 9).0;
        assert!((70..=72).contains(&quarter_y), "{quarter_y}");
        assert_eq!(pixel(&buffer, &info, 1, 1).1, 128, "white has no chroma");
    }

    #[test]
    fn a_frame_taken_fades_out_over_the_next() {
        let (mut before, info) = black_frame(8, 8);
        {
            let mut map = before.get_mut().unwrap().map_writable().unwrap();
            map[..64].fill(200);
        }
        let taken = {
            let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(before.as_ref(), &info).unwrap();
            Planes::of_frame(&frame).unwrap()
        };
        let (mut after, _) = black_frame(8, 8);
        {
            let mut frame =
                gst_video::VideoFrameRef::from_buffer_ref_writable(after.get_mut().unwrap(), &info).unwrap();
            taken.blend(&mut frame, 0.5);
        }
        assert_eq!(pixel(&after, &info, 7, 7).0, 108, "(200 + 16) / 2");
        assert_eq!(pixel(&after, &info, 7, 7).1, 128);
    }
}
