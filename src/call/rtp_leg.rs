//! A participant sending plain RTP (an SFU's forwarder: mediasoup PlainTransport, Kurento RtpEndpoint, Janus
//! `rtp_forward`): its own pipeline of one `rtpbin` session per track, fed by a UDP socket pair, decoded once into
//! taps like a WHIP leg. No ICE or DTLS here, so each socket takes packets only from the first address it heard.
//! The session's RTCP (receiver reports, keyframe requests: FIR, as the RTP session sends the decoder's requests)
//! goes back to where the sender's RTCP comes from, or to its RTP source until RTCP arrives. With rtcp-mux
//! (RFC 5761) RTCP shares the RTP socket both ways; with SRTP an `srtpdec` sits in front of the session (packets
//! failing authentication die there) and an `srtpenc` behind its outgoing RTCP.

use super::decode::{link_decoder, link_discard, TrackKind};
use super::leg::LegGone;
use super::participant::Participant;
use super::peer_wiring::{attach, NewTrack};
use super::rtp_ports::{PortLease, PortsExhausted, RtpPorts};
use super::rtp_srtp::SrtpKeys;
use super::rtp_track::RtpTrack;
use crate::gst_util::make;
use crate::wall_clock::now_ms;
use anyhow::{anyhow, Context, Result};
use gst::prelude::*;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Attempts at binding a track's pair before giving up (ports other processes hold are skipped).
const BIND_ATTEMPTS: usize = 16;

/// Where a track listens.
#[derive(Debug, Clone, Copy)]
pub struct TrackPorts {
    pub kind: TrackKind,
    pub port: u16,
    pub rtcp_port: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum RtpJoinError {
    #[error(transparent)]
    Exhausted(#[from] PortsExhausted),
    #[error("cannot receive RTP: {0:#}")]
    Failed(#[from] anyhow::Error),
}

pub struct RtpLeg {
    pub participant: Arc<Participant>,
    pub tracks: Vec<TrackPorts>,
    pipeline: gst::Pipeline,
    started_ms: u64,
    _leases: Vec<PortLease>,
    /// Dropping it ends the bus-watch task.
    _stop_watch: tokio::sync::oneshot::Sender<()>,
}

/// Where a participant's packets must come from, when the request says (an SFU's known address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeclaredSource {
    pub ip: std::net::IpAddr,
    /// The RTP source port, if known (RTCP may come from another port of the same address).
    pub port: Option<u16>,
}

/// How a participant's packets travel, beyond the tracks: all optional.
#[derive(Debug, Clone, Default)]
pub struct Transport {
    pub source: Option<DeclaredSource>,
    /// Per track, in order: its SRTP keys, if it is encrypted (an SDP offer may mix RTP/AVP and RTP/SAVP).
    pub srtp: Vec<Option<SrtpKeys>>,
    /// RTCP arrives on the RTP port and ours goes back to the RTP source (RFC 5761).
    pub rtcp_mux: bool,
    /// Per track, in order: where our RTCP goes, declared (a sender whose RTCP leaves from another port than the
    /// one it listens on); None: where its RTCP (or else its RTP) comes from.
    pub rtcp_return: Vec<Option<SocketAddr>>,
}

impl Transport {
    fn srtp(&self, session: usize) -> Option<&SrtpKeys> {
        self.srtp.get(session).and_then(Option::as_ref)
    }

    fn rtcp_return(&self, session: usize) -> Option<SocketAddr> {
        self.rtcp_return.get(session).copied().flatten()
    }
}

/// The first address a socket heard from (among those `declared` allows); later packets from anywhere else are
/// dropped.
#[derive(Default)]
struct SourceLock {
    locked: Mutex<Option<SocketAddr>>,
    declared: Option<DeclaredSource>,
}

impl SourceLock {
    fn new(declared: Option<DeclaredSource>) -> Self {
        Self {
            locked: Mutex::default(),
            declared,
        }
    }

    /// True if `from` is (or now becomes) the locked source; `first` is called once, when it locks.
    fn admit(&self, from: SocketAddr, first: impl FnOnce()) -> bool {
        if let Some(declared) = self.declared {
            if from.ip() != declared.ip || declared.port.is_some_and(|p| p != from.port()) {
                return false;
            }
        }
        let mut locked = self.locked.lock().unwrap();
        match *locked {
            Some(source) => source == from,
            None => {
                *locked = Some(from);
                first();
                true
            }
        }
    }
}

/// Where and how the server receives plain RTP (the same for every participant).
pub struct Receiving<'a> {
    /// The local address the sockets are bound to.
    pub address: &'a str,
    pub ports: &'a RtpPorts,
    /// Jitter-buffer latency.
    pub latency_ms: u32,
}

impl RtpLeg {
    /// Binds a pair of ports per track and starts receiving; `gone` hears about pipeline errors.
    pub fn new(
        id: String,
        name: String,
        receiving: &Receiving,
        tracks: &[RtpTrack],
        transport: &Transport,
        gone: mpsc::UnboundedSender<LegGone>,
    ) -> Result<Self, RtpJoinError> {
        let Receiving {
            address,
            ports,
            latency_ms,
        } = *receiving;
        let pipeline = gst::Pipeline::with_name(&format!("rtp-{id}"));
        let rtpbin = make("rtpbin")?;
        rtpbin.set_property("latency", latency_ms);
        // AVPF: feedback (keyframe requests) goes out at once instead of waiting for the next regular report.
        rtpbin.set_property_from_str("rtp-profile", "avpf");
        pipeline.add(&rtpbin).map_err(|e| anyhow!("{e}"))?;
        let participant = Participant::new(id.clone(), name);
        let mut leases = Vec::new();
        let mut bound = Vec::new();
        let wired = tracks.iter().enumerate().try_for_each(|(session, track)| {
            let (lease, rtp_src, rtcp_src) = bind_pair(&pipeline, address, track, ports, session, transport)?;
            bound.push(TrackPorts {
                kind: track.kind,
                port: lease.rtp,
                rtcp_port: if transport.rtcp_mux { lease.rtp } else { lease.rtcp() },
            });
            leases.push(lease);
            let sockets = (&rtp_src, rtcp_src.as_ref());
            wire_session(&pipeline, &rtpbin, session, track, transport, sockets)?;
            Ok::<_, RtpJoinError>(())
        });
        if let Err(e) = wired {
            // Sockets bound for the tracks before: elements must reach NULL before they are disposed.
            let _ = pipeline.set_state(gst::State::Null);
            return Err(e);
        }
        decode_sessions(&pipeline, &rtpbin, &participant);
        // Failed binds left errors on the bus: they are not this participant's failure.
        let bus = pipeline.bus().expect("pipeline has a bus");
        while bus.pop().is_some() {}
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let leg = Self {
            participant,
            tracks: bound,
            pipeline,
            started_ms: now_ms(),
            _leases: leases,
            _stop_watch: stop_tx,
        };
        leg.watch(gone, stop_rx);
        leg.pipeline
            .set_state(gst::State::Playing)
            .context("starting RTP participant pipeline")?;
        Ok(leg)
    }

    /// Milliseconds since media last arrived on any track (or since the leg started, if none yet).
    pub fn silent_for_ms(&self) -> u64 {
        let last = self.participant.last_media_ms().max(self.started_ms);
        now_ms().saturating_sub(last)
    }

    fn watch(&self, gone: mpsc::UnboundedSender<LegGone>, stop: tokio::sync::oneshot::Receiver<()>) {
        super::leg::report_first_error(&self.pipeline, self.participant.id.clone(), gone, stop);
    }
}

impl Drop for RtpLeg {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// A `udpsrc` on `address:port`, bound now (READY) so a port another process holds shows at once.
fn bind_udpsrc(pipeline: &gst::Pipeline, address: &str, port: u16, caps: Option<&gst::Caps>) -> Option<gst::Element> {
    let src = make("udpsrc").ok()?;
    src.set_property("address", address);
    src.set_property("port", i32::from(port));
    // The RTCP socket also sends our RTCP (symmetric RTCP): it must outlive the udpsrc's own use of it.
    src.set_property("close-socket", false);
    if let Some(caps) = caps {
        src.set_property("caps", caps);
    }
    pipeline.add(&src).ok()?;
    if src.set_state(gst::State::Ready).is_err() {
        let _ = src.set_state(gst::State::Null);
        let _ = pipeline.remove(&src);
        return None;
    }
    Some(src)
}

/// What arrives on the RTP socket: the track's caps, named `application/x-srtp` when encrypted.
fn rtp_caps(track: &RtpTrack, srtp: bool) -> gst::Caps {
    let mut caps = track.caps();
    if srtp {
        caps.make_mut()
            .structure_mut(0)
            .expect("one structure")
            .set_name("application/x-srtp");
    }
    caps
}

fn rtcp_caps(srtp: bool) -> gst::Caps {
    gst::Caps::new_empty_simple(if srtp {
        "application/x-srtcp"
    } else {
        "application/x-rtcp"
    })
}

/// Leases a pair and binds its sockets (only the RTP one with rtcp-mux: the pair stays leased), skipping pairs
/// that turn out to be held by another process.
fn bind_pair(
    pipeline: &gst::Pipeline,
    address: &str,
    track: &RtpTrack,
    ports: &RtpPorts,
    session: usize,
    transport: &Transport,
) -> Result<(PortLease, gst::Element, Option<gst::Element>), RtpJoinError> {
    let mut skip = BTreeSet::new();
    let srtp = transport.srtp(session).is_some();
    for _ in 0..BIND_ATTEMPTS {
        let lease = ports.lease(&skip)?;
        let caps = rtp_caps(track, srtp);
        let Some(rtp) = bind_udpsrc(pipeline, address, lease.rtp, Some(&caps)) else {
            skip.insert(lease.rtp);
            continue;
        };
        if transport.rtcp_mux {
            return Ok((lease, rtp, None));
        }
        let Some(rtcp) = bind_udpsrc(pipeline, address, lease.rtcp(), Some(&rtcp_caps(srtp))) else {
            let _ = rtp.set_state(gst::State::Null);
            let _ = pipeline.remove(&rtp);
            skip.insert(lease.rtp);
            continue;
        };
        return Ok((lease, rtp, Some(rtcp)));
    }
    Err(anyhow!("no port pair on {address} could be bound after {BIND_ATTEMPTS} attempts").into())
}

/// The source address of a received datagram (udpsrc attaches it to every buffer).
fn sender(buffer: &gst::BufferRef) -> Option<SocketAddr> {
    let meta = buffer.meta::<gst_net::NetAddressMeta>()?;
    let addr = meta.addr().downcast::<gio::InetSocketAddress>().ok()?;
    Some(SocketAddr::from(addr))
}

/// The SSRC of an RTP packet (bytes 8..12), for a track that declared one.
fn ssrc_of(buffer: &gst::BufferRef) -> Option<u32> {
    let mut bytes = [0u8; 4];
    (buffer.copy_to_slice(8, &mut bytes).is_ok()).then(|| u32::from_be_bytes(bytes))
}

/// Tells the RTCP sink to send to `to` only.
fn send_rtcp_to(sink: &gst::Element, to: SocketAddr) {
    sink.emit_by_name::<()>("clear", &[]);
    sink.emit_by_name::<()>("add", &[&to.ip().to_string(), &i32::from(to.port())]);
    tracing::debug!("RTCP goes to {to}");
}

/// RTCP among RTP on one port (RFC 5761 §4): the second byte of RTCP (its packet type) is 192 to 223, where RTP
/// has the marker bit and a payload type of 64 to 95, which no dynamic payload type uses.
fn is_rtcp(buffer: &gst::BufferRef) -> bool {
    let mut second = [0u8; 1];
    buffer.copy_to_slice(1, &mut second).is_ok() && (192..=223).contains(&second[0])
}

fn link(src: &gst::Pad, sink: &gst::Pad) -> Result<()> {
    src.link(sink).map(|_| ()).map_err(|e| anyhow!("{e:?}"))
}

/// RTCP from its own socket, or the RTCP half of a split RTP socket: that one's upstream caps say RTP (see
/// `split_mux`), so no format check.
fn link_rtcp(src: &gst::Pad, sink: &gst::Pad) -> Result<()> {
    src.link_full(sink, gst::PadLinkCheck::empty())
        .map(|_| ())
        .map_err(|e| anyhow!("{e:?}"))
}

fn pad(element: &gst::Element, name: &str) -> Result<gst::Pad> {
    element
        .static_pad(name)
        .or_else(|| element.request_pad_simple(name))
        .ok_or_else(|| anyhow!("{} has no pad {name}", element.name()))
}

/// With rtcp-mux: the RTP socket's datagrams split in two by `is_rtcp` (a `tee`, each half dropping the other's
/// packets), the RTCP half announced with `rtcp` caps. The tee would ask both halves to agree on one format, which
/// RTP and RTCP never do: the RTCP half answers the tee's caps questions itself (the RTP half decides) and is
/// linked without a format check. Returns the (RTP, RTCP) source pads.
fn split_mux(pipeline: &gst::Pipeline, from: &gst::Pad, rtcp: gst::Caps) -> Result<(gst::Pad, gst::Pad)> {
    let tee = make("tee")?;
    pipeline.add(&tee)?;
    link(from, &pad(&tee, "sink")?)?;
    let (rtp_half, rtcp_half) = (pad(&tee, "src_%u")?, pad(&tee, "src_%u")?);
    rtp_half.add_probe(gst::PadProbeType::BUFFER, |_, info| match info.buffer() {
        Some(b) if is_rtcp(b) => gst::PadProbeReturn::Drop,
        _ => gst::PadProbeReturn::Ok,
    });
    let probes = gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM | gst::PadProbeType::QUERY_DOWNSTREAM;
    rtcp_half.add_probe(probes, move |_, info| {
        if let Some(b) = info.buffer() {
            return if is_rtcp(b) {
                gst::PadProbeReturn::Ok
            } else {
                gst::PadProbeReturn::Drop
            };
        }
        if let Some(query) = info.query_mut() {
            return match query.view_mut() {
                gst::QueryViewMut::Caps(q) => {
                    let result = q.filter().map_or_else(gst::Caps::new_any, |f| f.to_owned());
                    q.set_result(&result);
                    gst::PadProbeReturn::Handled
                }
                gst::QueryViewMut::AcceptCaps(q) => {
                    q.set_result(true);
                    gst::PadProbeReturn::Handled
                }
                _ => gst::PadProbeReturn::Ok,
            };
        }
        if matches!(info.event().map(|e| e.view()), Some(gst::EventView::Caps(_))) {
            info.data = Some(gst::PadProbeData::Event(gst::event::Caps::new(&rtcp)));
        }
        gst::PadProbeReturn::Ok
    });
    Ok((rtp_half, rtcp_half))
}

/// Links one track's sockets into session `session` of `rtpbin` (through `srtpdec` with SRTP), with the source
/// checks, and its outgoing RTCP (through `srtpenc` with SRTP) to a sink sharing the RTCP socket (the RTP one with
/// rtcp-mux).
fn wire_session(
    pipeline: &gst::Pipeline,
    rtpbin: &gst::Element,
    session: usize,
    track: &RtpTrack,
    transport: &Transport,
    (rtp_src, rtcp_src): (&gst::Element, Option<&gst::Element>),
) -> Result<()> {
    let source = transport.source;
    let rtcp_sink = make("multiudpsink")?;
    let replies_from = rtcp_src.unwrap_or(rtp_src);
    rtcp_sink.set_property("socket", replies_from.property::<Option<gio::Socket>>("used-socket"));
    rtcp_sink.set_property("close-socket", false);
    rtcp_sink.set_property("sync", false);
    rtcp_sink.set_property("async", false);
    pipeline.add(&rtcp_sink)?;

    // RTCP goes to the declared return address, or else to the sender's RTP address until its own RTCP shows
    // where it wants it.
    let declared_return = transport.rtcp_return(session);
    if let Some(to) = declared_return {
        send_rtcp_to(&rtcp_sink, to);
    }
    let rtcp_from_rtcp = Arc::new(AtomicBool::new(declared_return.is_some()));
    let rtp_lock = Arc::new(SourceLock::new(source));
    let declared_ssrc = track.ssrc;
    let sink = rtcp_sink.downgrade();
    let heard_rtcp = rtcp_from_rtcp.clone();
    let mux = transport.rtcp_mux;
    source_probe(rtp_src, move |buffer, from| {
        let admitted = rtp_lock.admit(from, || {
            tracing::info!(session, "RTP from {from}; other sources are ignored");
            if let (Some(sink), false) = (sink.upgrade(), heard_rtcp.load(Ordering::SeqCst)) {
                send_rtcp_to(&sink, from);
            }
        });
        // An RTCP packet's bytes 8..12 are not an SSRC to check (its sender's SSRC is at 4..8).
        let rtcp = mux && is_rtcp(buffer);
        admitted && (rtcp || declared_ssrc.is_none_or(|want| ssrc_of(buffer) == Some(want)))
    });
    if let Some(rtcp_src) = rtcp_src {
        let rtcp_lock = Arc::new(SourceLock::new(source.map(|s| DeclaredSource { port: None, ..s })));
        let sink = rtcp_sink.downgrade();
        source_probe(rtcp_src, move |_, from| {
            rtcp_lock.admit(from, || {
                let declared = rtcp_from_rtcp.swap(true, Ordering::SeqCst) && declared_return.is_some();
                if let (Some(sink), false) = (sink.upgrade(), declared) {
                    send_rtcp_to(&sink, from);
                }
            })
        });
    }

    let srtp = transport.srtp(session).is_some();
    let rtp_out = pad(rtp_src, "src")?;
    let (mut rtp_in, mut rtcp_in) = match rtcp_src {
        Some(rtcp_src) => (rtp_out, pad(rtcp_src, "src")?),
        None => split_mux(pipeline, &rtp_out, rtcp_caps(srtp))?,
    };
    let mut rtcp_back = pad(rtpbin, &format!("send_rtcp_src_{session}"))?;
    if let Some(keys) = transport.srtp(session) {
        let dec = keys.receive.decoder()?;
        let enc = keys.send.encoder()?;
        pipeline.add_many([&dec, &enc])?;
        link(&rtp_in, &pad(&dec, "rtp_sink")?)?;
        link_rtcp(&rtcp_in, &pad(&dec, "rtcp_sink")?)?;
        link(&rtcp_back, &pad(&enc, "rtcp_sink_0")?)?;
        (rtp_in, rtcp_in, rtcp_back) = (pad(&dec, "rtp_src")?, pad(&dec, "rtcp_src")?, pad(&enc, "rtcp_src_0")?);
    }
    link(&rtp_in, &pad(rtpbin, &format!("recv_rtp_sink_{session}"))?)?;
    link_rtcp(&rtcp_in, &pad(rtpbin, &format!("recv_rtcp_sink_{session}"))?)?;
    link(&rtcp_back, &pad(&rtcp_sink, "sink")?)?;
    Ok(())
}

/// Drops every datagram `admit` refuses (given the buffer and where it came from); one with no address is dropped.
fn source_probe<F>(src: &gst::Element, admit: F)
where
    F: Fn(&gst::BufferRef, SocketAddr) -> bool + Send + Sync + 'static,
{
    let pad = src.static_pad("src").expect("udpsrc has a src pad");
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let keep = info
            .buffer()
            .and_then(|b| sender(b).map(|from| admit(b, from)))
            .unwrap_or(false);
        if keep {
            gst::PadProbeReturn::Ok
        } else {
            gst::PadProbeReturn::Drop
        }
    });
}

/// Decodes the first stream of each session into the participant's taps; a second one (a new SSRC in the same
/// session) is discarded, as it would fight over the tap.
fn decode_sessions(pipeline: &gst::Pipeline, rtpbin: &gst::Element, participant: &Arc<Participant>) {
    let pipeline = pipeline.downgrade();
    let participant = participant.clone();
    let decoding = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let span = tracing::info_span!("participant", participant_id = %participant.id);
    rtpbin.connect_pad_added(move |_, pad| {
        let Some(pipeline) = pipeline.upgrade() else { return };
        let name = pad.name();
        // recv_rtp_src_{session}_{ssrc}_{pt}
        let Some(rest) = name.strip_prefix("recv_rtp_src_") else {
            return;
        };
        let session = rest.split('_').next().unwrap_or_default().to_string();
        let _entered = span.enter();
        let track = NewTrack { mid: None, kind: None };
        let first = decoding.lock().unwrap().insert(session.clone());
        let linked = if first {
            link_decoder(&pipeline, pad).map_err(|e| format!("{e:#}"))
        } else {
            Err(format!("a second stream ({name}) in session {session}"))
        };
        match linked {
            Ok(linked) => attach(&participant, &linked, &track),
            Err(reason) => {
                tracing::warn!("not decoding RTP stream: {reason}");
                let _ = link_discard(&pipeline, pad);
            }
        }
    });
}
