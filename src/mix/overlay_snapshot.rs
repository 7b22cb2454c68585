//! A frame of the composite as an overlay picture: what a layout cross-fade fades out from. Converted once (by
//! GStreamer's video converter, the same code `videoconvert` runs) into AYUV in the frame's own colorimetry: the
//! overlay blend then takes it as it is, with no per-pixel colour conversion on each frame of the fade (as BGRA
//! would have), and no colour shift.

use anyhow::{Context, Result};

/// `sample`'s frame (the compositor's output, before any overlay) as AYUV with its video meta; its width and
/// height.
pub fn ayuv_of(sample: &gst::Sample) -> Result<(gst::Buffer, u32, u32)> {
    let caps = sample.caps().context("a frame without caps")?;
    let buffer = sample.buffer().context("a sample without a frame")?;
    let in_info = gst_video::VideoInfo::from_caps(caps).context("the frame's caps")?;
    let (width, height) = (in_info.width(), in_info.height());
    let out_info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Ayuv, width, height)
        .fps(in_info.fps())
        .colorimetry(&in_info.colorimetry())
        .chroma_site(in_info.chroma_site())
        .build()
        .context("AYUV info")?;
    let converter = gst_video::VideoConverter::new(&in_info, &out_info, None).context("a video converter")?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &in_info)
        .map_err(|_| anyhow::anyhow!("the frame cannot be read"))?;
    let mut out = gst::Buffer::with_size(out_info.size()).context("an AYUV buffer")?;
    {
        let out = out.get_mut().context("a new buffer")?;
        let mut dest = gst_video::VideoFrameRef::from_buffer_ref_writable(out, &out_info)
            .map_err(|_| anyhow::anyhow!("the AYUV buffer cannot be written"))?;
        converter.frame_ref(&frame, &mut dest);
    }
    gst_video::VideoMeta::add_full(
        out.get_mut().context("a new buffer")?,
        gst_video::VideoFrameFlags::empty(),
        gst_video::VideoFormat::Ayuv,
        width,
        height,
        &[0],
        &[out_info.stride()[0]],
    )
    .context("video meta")?;
    Ok((out, width, height))
}
