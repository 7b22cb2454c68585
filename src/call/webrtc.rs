//! webrtcbin helpers shared by every peer connection we make: configuration, offer/answer and ICE gathering
//! as async functions.

use anyhow::{anyhow, bail, Context, Result};
use gst::glib;
use gst::prelude::*;
use gst_webrtc::{WebRTCICEGatheringState, WebRTCSDPType, WebRTCSessionDescription};
use std::time::Duration;

/// How long we wait for ICE gathering before answering with what we have.
const GATHERING_TIMEOUT: Duration = Duration::from_secs(3);

/// Network settings for every webrtcbin we create.
#[derive(Debug, Clone, Default)]
pub struct IceConfig {
    /// Local addresses ICE may use. Empty means every interface.
    pub local_addresses: Vec<String>,
    /// e.g. `stun://stun.example.org:3478`; none by default so nothing leaves the machine unasked.
    pub stun_server: Option<String>,
}

impl IceConfig {
    pub fn loopback() -> Self {
        Self {
            local_addresses: vec!["127.0.0.1".into()],
            stun_server: None,
        }
    }
}

/// Creates a webrtcbin with bundling on and the ICE agent restricted to the configured addresses.
pub fn new_webrtcbin(name: &str, ice: &IceConfig, latency_ms: u32) -> Result<gst::Element> {
    let webrtc = gst::ElementFactory::make("webrtcbin")
        .name(name)
        .property_from_str("bundle-policy", "max-bundle")
        .property("latency", latency_ms)
        .build()
        .context("GStreamer element `webrtcbin` is missing (gstreamer1.0-plugins-bad, gstreamer1.0-nice)")?;
    if let Some(stun) = &ice.stun_server {
        webrtc.set_property("stun-server", stun);
    }
    let agent = webrtc.property::<glib::Object>("ice-agent");
    for address in &ice.local_addresses {
        let added = agent.emit_by_name::<bool>("add-local-ip-address", &[address]);
        if !added {
            bail!("ICE agent refused local address {address}");
        }
    }
    // UPnP would send SSDP multicast on every start; TCP candidates are never used by our peers.
    if agent.has_property("ice-tcp") {
        agent.set_property("ice-tcp", false);
    }
    if agent.has_property("agent") {
        let nice = agent.property::<glib::Object>("agent");
        if nice.has_property("upnp") {
            nice.set_property("upnp", false);
        }
    }
    Ok(webrtc)
}

fn description(sdp_text: &str, kind: WebRTCSDPType) -> Result<WebRTCSessionDescription> {
    let sdp = gst_sdp::SDPMessage::parse_buffer(sdp_text.as_bytes()).map_err(|_| anyhow!("SDP does not parse"))?;
    Ok(WebRTCSessionDescription::new(kind, sdp))
}

async fn set_description(webrtc: &gst::Element, signal: &str, desc: &WebRTCSessionDescription) -> Result<()> {
    let (promise, fut) = gst::Promise::new_future();
    webrtc.emit_by_name::<()>(signal, &[desc, &promise]);
    let reply = fut.await.map_err(|e| anyhow!("{signal}: {e:?}"))?;
    if let Some(reply) = reply {
        if let Ok(err) = reply.get::<glib::Error>("error") {
            bail!("{signal}: {}", err.message());
        }
    }
    Ok(())
}

pub async fn set_remote(webrtc: &gst::Element, sdp_text: &str, kind: WebRTCSDPType) -> Result<()> {
    set_description(webrtc, "set-remote-description", &description(sdp_text, kind)?).await
}

/// Runs `create-offer` or `create-answer`, sets the result as local description and returns it.
pub async fn create_local(webrtc: &gst::Element, kind: WebRTCSDPType) -> Result<()> {
    let (signal, field) = match kind {
        WebRTCSDPType::Offer => ("create-offer", "offer"),
        _ => ("create-answer", "answer"),
    };
    let (promise, fut) = gst::Promise::new_future();
    webrtc.emit_by_name::<()>(signal, &[&None::<gst::Structure>, &promise]);
    let reply = fut
        .await
        .map_err(|e| anyhow!("{signal}: {e:?}"))?
        .ok_or_else(|| anyhow!("{signal}: no reply"))?;
    if let Ok(err) = reply.get::<glib::Error>("error") {
        bail!("{signal}: {}", err.message());
    }
    let desc = reply
        .get::<WebRTCSessionDescription>(field)
        .map_err(|_| anyhow!("{signal}: reply has no {field}"))?;
    set_description(webrtc, "set-local-description", &desc).await
}

/// Waits until ICE gathering completes (or a short deadline passes) and returns the local SDP with candidates,
/// so signalling needs no trickle.
pub async fn gathered_local_sdp(webrtc: &gst::Element) -> Result<String> {
    let (tx, mut rx) = tokio::sync::watch::channel(());
    let handler = webrtc.connect_notify(Some("ice-gathering-state"), move |_, _| {
        let _ = tx.send(());
    });
    let complete = |w: &gst::Element| {
        w.property::<WebRTCICEGatheringState>("ice-gathering-state") == WebRTCICEGatheringState::Complete
    };
    let waited = tokio::time::timeout(GATHERING_TIMEOUT, async {
        while !complete(webrtc) {
            if rx.changed().await.is_err() {
                break;
            }
        }
    })
    .await;
    webrtc.disconnect(handler);
    if waited.is_err() {
        tracing::warn!("ICE gathering did not complete in {GATHERING_TIMEOUT:?}; answering with what we have");
    }
    local_sdp(webrtc)
}

/// The local description's SDP with the candidates gathered so far.
pub fn local_sdp(webrtc: &gst::Element) -> Result<String> {
    let desc = webrtc
        .property::<Option<WebRTCSessionDescription>>("local-description")
        .ok_or_else(|| anyhow!("no local description"))?;
    desc.sdp().as_text().context("rendering local SDP")
}

/// Answers a remote offer: sets it, creates and sets the answer, and returns the answer's SDP with every local
/// candidate (our peers get no trickle).
pub async fn answer(webrtc: &gst::Element, offer: &str) -> Result<String> {
    set_remote(webrtc, offer, WebRTCSDPType::Offer).await?;
    create_local(webrtc, WebRTCSDPType::Answer).await?;
    gathered_local_sdp(webrtc).await
}
