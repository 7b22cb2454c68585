//! Publishing into a Janus VideoRoom (for `callcast publish --janus`): join as a publisher, offer, apply the
//! answer, keep the session alive until told to stop.

use crate::call::janus::api::{plugin_data, JanusApi};
use crate::call::janus::JanusTarget;
use crate::call::webrtc;
use crate::tools::orphan::{peer_trouble, OrphanWatch};
use anyhow::{anyhow, bail, Context, Result};
use gst_webrtc::WebRTCSDPType;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use std::time::Duration;

const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Well under any sensible Janus `session_timeout` (60 s by default; tests use 10 s).
const KEEPALIVE: Duration = Duration::from_secs(4);
/// How often the peer connection's state is looked at.
const PEER_LOOK: Duration = Duration::from_secs(1);

/// Waits for the first plugin event for which `pick` returns Some, surfacing plugin errors.
async fn wait_event<T>(api: &JanusApi, session: u64, mut pick: impl FnMut(&Value) -> Option<T>) -> Result<T> {
    tokio::time::timeout(ANSWER_TIMEOUT, async {
        loop {
            for event in api.poll(session).await? {
                let data = plugin_data(&event);
                if let Some(code) = data["error_code"].as_i64() {
                    bail!("Janus error {code}: {}", data["error"].as_str().unwrap_or("unknown"));
                }
                if let Some(found) = pick(&event) {
                    return Ok(found);
                }
            }
        }
    })
    .await
    .map_err(|_| anyhow!("Janus did not answer in {ANSWER_TIMEOUT:?}"))?
}

/// Publishes `webrtc`'s tracks into the room as `display` until `until` resolves, then leaves.
pub async fn publish(
    target: &JanusTarget,
    display: &str,
    webrtc: &gst::Element,
    until: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let api = JanusApi::new(&target.url, target.token.clone());
    let session = api.create_session().await.context("Janus session")?;
    let handle = api.attach(session).await?;
    let mut join = json!({"request": "join", "ptype": "publisher", "room": target.room, "display": display});
    if let Some(pin) = &target.pin {
        join["pin"] = json!(pin.expose_secret());
    }
    api.message(session, handle, join, None).await?;
    wait_event(&api, session, |e| {
        (plugin_data(e)["videoroom"] == "joined").then_some(())
    })
    .await
    .context("joining the room")?;

    webrtc::create_local(webrtc, WebRTCSDPType::Offer).await?;
    let offer = webrtc::gathered_local_sdp(webrtc).await?;
    let configure = json!({"request": "configure", "audio": true, "video": true});
    api.message(session, handle, configure, Some(json!({"type": "offer", "sdp": offer})))
        .await?;
    let answer = wait_event(&api, session, |e| e["jsep"]["sdp"].as_str().map(str::to_string))
        .await
        .context("waiting for Janus' answer")?;
    webrtc::set_remote(webrtc, &answer, WebRTCSDPType::Answer).await?;
    api.trickle_complete(session, handle).await?;
    println!("publishing to Janus room {}", target.room);

    tokio::pin!(until);
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    let mut look = tokio::time::interval(PEER_LOOK);
    let mut watch = OrphanWatch::default();
    let outcome = loop {
        tokio::select! {
            _ = &mut until => break Ok(()),
            _ = keepalive.tick() => {
                if let Err(e) = api.keepalive(session).await {
                    break Err(anyhow!("Janus session lost: {e}"));
                }
            }
            // Janus may keep the session while the media path is dead (its process restarted behind a proxy,
            // a network cut): a failed peer connection ends the publisher too.
            _ = look.tick() => {
                if let Some(reason) = watch.observe(std::time::Instant::now(), peer_trouble(webrtc)) {
                    break Err(anyhow!("{reason}"));
                }
            }
        }
    };
    let _ = api
        .message(session, handle, json!({"request": "unpublish"}), None)
        .await;
    let _ = api.destroy(session).await;
    outcome
}
