//! A WHEP viewer's send path inside webrtcbin, made to carry the packets of each NAL unit too big for one packet
//! (rtph264pay's FU-A fragments, most of a frame's bytes) as one buffer list.
//!
//! webrtcbin 1.22 puts a `clocksync` (syncing to the clock) and a bin of `rtpulpfecenc ! rtpredenc` between each
//! of its sink pads and the RTP session. Neither encoder takes buffer lists, so the list of fragments that
//! rtph264pay pushes is split there, and each packet then crosses the RTP session, the retransmission sender,
//! SRTP and nicesink on its own. Our transceivers keep webrtcbin's `fec-type` of none, so ULPFEC and RED are
//! never negotiated and the encoders have no payload type (255 and 0): they only pass packets through. The
//! clocksync is then linked straight to what follows them, and every element from there on takes the list
//! whole; with a payload type set on either, the path is left as it is. The clocksync stops waiting for the clock
//! too: the station pushes live media as it comes, and a wait per frame would only add a thread wake.

use anyhow::{bail, Context, Result};
use gst::prelude::*;

/// Bypasses the FEC encoders behind `sink` (a webrtcbin sink pad) once webrtcbin has built its path. webrtcbin
/// builds it when the pad's caps come, just before the first buffer, so this is done on that buffer, in the
/// streaming thread that pushes it: nothing else crosses these elements then.
pub fn bypass_fec_encoders_at_first_buffer(sink: &gst::Pad) {
    sink.add_probe(gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST, |pad, _| {
        if let Err(e) = bypass_fec_encoders(pad) {
            // The packets still go out, one by one: a webrtcbin other than 1.22's shaped this path.
            tracing::warn!("a WHEP viewer's send path keeps its FEC encoders: {e:#}");
        }
        gst::PadProbeReturn::Remove
    });
}

/// Unlinks the FEC encoder bin behind webrtcbin's sink pad `pad` and links the clocksync before it to the
/// element after it.
fn bypass_fec_encoders(pad: &gst::Pad) -> Result<()> {
    let ghost = pad.downcast_ref::<gst::GhostPad>().context("not a ghost pad")?;
    let clocksync = ghost
        .target()
        .and_then(|t| t.parent_element())
        .context("webrtcbin's sink pad leads nowhere")?;
    if !is_factory(&clocksync, "clocksync") {
        bail!(
            "webrtcbin's {} leads to {}, not a clocksync",
            pad.name(),
            clocksync.name()
        );
    }
    let out = clocksync.static_pad("src").context("clocksync src")?;
    let fec_sink = out.peer().context("the clocksync is not linked")?;
    let fec = fec_sink.parent_element().context("no FEC encoder")?;
    let holds_fec = fec.downcast_ref::<gst::Bin>().is_some_and(|bin| {
        bin.iterate_elements()
            .into_iter()
            .flatten()
            .any(|e| is_factory(&e, "rtpulpfecenc"))
    });
    if !holds_fec {
        bail!("webrtcbin's {} has no FEC encoder after its clocksync", pad.name());
    }
    if fec_in_use(&fec) {
        return Ok(());
    }
    let fec_src = fec.static_pad("src").context("FEC encoder src")?;
    let next = fec_src.peer().context("the FEC encoder is not linked")?;
    out.unlink(&fec_sink)?;
    fec_src.unlink(&next)?;
    out.link(&next).context("linking the clocksync past the FEC encoder")?;
    clocksync.set_property("sync", false);
    Ok(())
}

/// Whether the encoders of `fec` (webrtcbin's bin) have a payload type: ULPFEC (its `pt` is 255 when not) or
/// RED (0 when not) was negotiated.
fn fec_in_use(fec: &gst::Element) -> bool {
    let Some(bin) = fec.downcast_ref::<gst::Bin>() else {
        return false;
    };
    bin.iterate_elements().into_iter().flatten().any(|e| {
        (is_factory(&e, "rtpulpfecenc") && e.property::<u32>("pt") != 255)
            || (is_factory(&e, "rtpredenc") && e.property::<i32>("pt") != 0)
    })
}

fn is_factory(element: &gst::Element, name: &str) -> bool {
    element.factory().is_some_and(|f| f.name() == name)
}

#[cfg(test)]
#[path = "whep_send_path_tests.rs"]
mod tests;
