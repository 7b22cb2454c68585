//! `callcast publish --rtp`: the synthetic participant as plain RTP into a built-in room. Each copy joins with a
//! JSON description of the tracks and is given a port pair per track. Its RTCP leaves from the socket it listens
//! on, so the server's keyframe requests come back to it, and rtpbin turns them into keyframes of the encoder.

use super::publish::{build_tracks, first_error, PublishArgs};
use crate::gst_util::make_with;
use anyhow::{anyhow, bail, Context, Result};
use gst::prelude::*;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

/// A copy's place in the room: where to send each track, and the resource to `DELETE` when done.
struct Joined {
    resource: Option<reqwest::Url>,
    address: String,
    /// `(rtp port, rtcp port)` per track, in the order the tracks were described.
    ports: Vec<(u16, u16)>,
}

/// The JSON the join endpoint takes for a track of these RTP caps.
fn track_json(caps: &gst::Caps) -> Result<Value> {
    let s = caps.structure(0).context("empty track caps")?;
    let media = s.get::<&str>("media")?;
    let encoding = s.get::<&str>("encoding-name")?;
    let mut track = json!({
        "kind": media,
        "codec": if encoding == "OPUS" { "opus" } else { encoding },
        "payload_type": s.get::<i32>("payload")?,
        "clock_rate": s.get::<i32>("clock-rate")?,
    });
    if let Ok(channels) = s.get::<&str>("encoding-params") {
        track["channels"] = json!(channels.parse::<u32>().context("encoding-params")?);
    }
    Ok(track)
}

/// `POST`s the tracks as participant `name`; where to send them.
async fn join(
    client: &reqwest::Client,
    url: &reqwest::Url,
    name: &str,
    token: Option<&SecretString>,
    tracks: &[Value],
) -> Result<Joined> {
    let mut request = client.post(url.clone()).json(&json!({"name": name, "tracks": tracks}));
    if let Some(token) = token {
        request = request.bearer_auth(token.expose_secret());
    }
    super::publish::note_join_request();
    let response = request.send().await.context("RTP join request failed")?;
    let status = response.status();
    let resource = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .and_then(|l| url.join(l).ok());
    let body = response.text().await.unwrap_or_default();
    if status != reqwest::StatusCode::CREATED {
        bail!("RTP join endpoint answered {status}: {body}");
    }
    let reply: Value = serde_json::from_str(&body).context("RTP join reply is not JSON")?;
    let port = |t: &Value, key: &str| t[key].as_u64().and_then(|p| u16::try_from(p).ok());
    let ports = reply["tracks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| port(t, "port").zip(port(t, "rtcp_port")))
        .collect::<Option<Vec<_>>>()
        .filter(|p| p.len() == tracks.len())
        .ok_or_else(|| anyhow!("RTP join reply without a port pair per track: {body}"))?;
    let address = reply["address"]
        .as_str()
        .ok_or_else(|| anyhow!("RTP join reply without an address: {body}"))?;
    Ok(Joined {
        resource,
        address: address.to_string(),
        ports,
    })
}

fn udpsink(host: &str, port: u16) -> Result<gst::Element> {
    let sink = make_with("udpsink", &[("host", host), ("sync", "false"), ("async", "false")])?;
    sink.set_property("port", i32::from(port));
    Ok(sink)
}

/// Sends copy `copy` of every track (`tees`, in join order) where `joined` says, through an rtpbin of its own.
fn send_copy(pipeline: &gst::Pipeline, copy: u32, tees: &[&gst::Element], joined: &Joined) -> Result<()> {
    let rtpbin = make_with("rtpbin", &[("rtp-profile", "avpf")])?;
    rtpbin.set_property("name", format!("rtpbin{copy}"));
    pipeline.add(&rtpbin)?;
    for (i, (tee, &(port, rtcp_port))) in tees.iter().zip(&joined.ports).enumerate() {
        let queue = make_with("queue", &[("leaky", "downstream"), ("max-size-buffers", "50")])?;
        let rtp_out = udpsink(&joined.address, port)?;
        let rtcp_out = udpsink(&joined.address, rtcp_port)?;
        let rtcp_in = make_with("udpsrc", &[("address", "0.0.0.0"), ("port", "0")])?;
        rtcp_in.set_property("caps", gst::Caps::new_empty_simple("application/x-rtcp"));
        pipeline.add_many([&queue, &rtp_out, &rtcp_out, &rtcp_in])?;
        tee.link(&queue)?;
        queue.link_pads(None, &rtpbin, Some(&format!("send_rtp_sink_{i}")))?;
        rtpbin.link_pads(Some(&format!("send_rtp_src_{i}")), &rtp_out, None)?;
        rtpbin.link_pads(Some(&format!("send_rtcp_src_{i}")), &rtcp_out, None)?;
        rtcp_in.link_pads(None, &rtpbin, Some(&format!("recv_rtcp_sink_{i}")))?;
        // Symmetric RTCP: the reports leave from the socket the server's keyframe requests come back to.
        rtcp_in
            .set_state(gst::State::Ready)
            .context("binding the RTCP socket")?;
        rtcp_out.set_property_from_value("socket", &rtcp_in.property_value("used-socket"));
        rtcp_out.set_property("close-socket", false);
    }
    Ok(())
}

/// Publishes until SIGINT/SIGTERM, then leaves the room (each copy's `DELETE`).
pub async fn run(url: &str, args: &PublishArgs) -> Result<()> {
    let url = reqwest::Url::parse(url).context("--rtp is not a URL")?;
    let (pipeline, tracks) = build_tracks(args)?;
    let described = tracks
        .iter()
        .map(|(_, caps)| track_json(caps))
        .collect::<Result<Vec<_>>>()?;
    let tees: Vec<&gst::Element> = tracks.iter().map(|(tee, _)| tee).collect();
    let client = reqwest::Client::new();
    let token = args.token.as_ref();
    let name = args.name.clone().unwrap_or_else(|| "callcast publisher".into());
    let mut resources = Vec::new();
    let outcome = async {
        for copy in 0..args.copies {
            let copy_name = if args.copies > 1 {
                format!("{name} {}", copy + 1)
            } else {
                name.clone()
            };
            let joined = join(&client, &url, &copy_name, token, &described).await?;
            resources.extend(joined.resource.clone());
            send_copy(&pipeline, copy, &tees, &joined)?;
        }
        pipeline.set_state(gst::State::Playing).context("starting publisher")?;
        println!("publishing to {url}");
        tokio::select! {
            _ = crate::server::shutdown_signal() => Ok(()),
            err = first_error(&pipeline) => Err(anyhow!("publisher pipeline: {err}")),
        }
    }
    .await;
    let _ = pipeline.set_state(gst::State::Null);
    for resource in resources {
        let mut request = client.delete(resource);
        if let Some(token) = token {
            request = request.bearer_auth(token.expose_secret());
        }
        let _ = request.send().await;
    }
    outcome
}
