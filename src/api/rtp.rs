//! Plain RTP participants of the built-in rooms: a JSON description of the tracks in, `201` with the ports to send
//! them to and a `Location` to `DELETE`.

use super::error::ApiError;
use super::extract::{Path, Query};
use super::room_join::{admit, room_name, Client};
use super::AppState;
use crate::call::decode::TrackKind;
use crate::call::room::{RtpJoined, Via};
use crate::call::rtp_leg::{DeclaredSource, RtpJoinError, Transport};
use crate::call::rtp_sdp;
use crate::call::rtp_srtp::{SrtpKey, SrtpKeyError, SrtpKeys};
use crate::call::rtp_track::RtpTrack;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

/// One participant sends at most a video and an audio track (each fills one tap).
const MAX_TRACKS: usize = 2;
/// Once the ports are gone they stay gone until someone leaves: about a media timeout away at best.
const EXHAUSTED_RETRY_S: u32 = 5;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RtpRequest {
    name: Option<String>,
    tracks: Vec<TrackRequest>,
    /// `ip` or `ip:port`: packets from anywhere else are dropped (default: the first address heard).
    source: Option<String>,
    /// SRTP on every track, with the sender's key (mediasoup's `srtpParameters`: `cryptoSuite`, `keyBase64`).
    srtp: Option<SrtpRequest>,
    /// RTCP arrives on the RTP port, and ours goes back to where the RTP comes from (RFC 5761).
    #[serde(default)]
    rtcp_mux: bool,
}

/// No Debug: the key must not be printed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SrtpRequest {
    crypto_suite: String,
    key_base64: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrackRequest {
    kind: String,
    codec: String,
    payload_type: u8,
    clock_rate: u32,
    channels: Option<u32>,
    ssrc: Option<u32>,
    /// `ip:port` our RTCP goes to, when the sender's RTCP leaves from elsewhere than where it listens.
    rtcp_return: Option<String>,
}

/// The codecs we decode, by the names senders use: (name, kind, RTP encoding name, the only clock rate).
const CODECS: &[(&str, TrackKind, &str, u32)] = &[
    ("VP8", TrackKind::Video, "VP8", 90_000),
    ("VP9", TrackKind::Video, "VP9", 90_000),
    ("H264", TrackKind::Video, "H264", 90_000),
    ("opus", TrackKind::Audio, "OPUS", 48_000),
];

fn track(i: usize, t: &TrackRequest) -> Result<RtpTrack, ApiError> {
    let field = |name: &str| format!("tracks[{i}].{name}");
    let kind = match t.kind.as_str() {
        "video" => TrackKind::Video,
        "audio" => TrackKind::Audio,
        other => {
            return Err(ApiError::bad_request(
                field("kind"),
                format!("`{other}`: must be video or audio"),
            ))
        }
    };
    let names = || CODECS.iter().map(|c| c.0).collect::<Vec<_>>().join(", ");
    let &(_, codec_kind, encoding, clock_rate) = CODECS
        .iter()
        .find(|c| c.0.eq_ignore_ascii_case(&t.codec))
        .ok_or_else(|| ApiError::bad_request(field("codec"), format!("`{}`: we take {}", t.codec, names())))?;
    if codec_kind != kind {
        return Err(ApiError::bad_request(
            field("codec"),
            format!("{} is not a {} codec", t.codec, t.kind),
        ));
    }
    if t.payload_type > 127 {
        return Err(ApiError::bad_request(field("payload_type"), "must be 0 to 127"));
    }
    if t.clock_rate != clock_rate {
        return Err(ApiError::bad_request(
            field("clock_rate"),
            format!("{} runs at {clock_rate} Hz", t.codec),
        ));
    }
    match (kind, t.channels) {
        (TrackKind::Video, Some(_)) => {
            return Err(ApiError::bad_request(field("channels"), "only audio has channels"));
        }
        (TrackKind::Audio, Some(n)) if !(1..=2).contains(&n) => {
            return Err(ApiError::bad_request(field("channels"), "must be 1 or 2"));
        }
        _ => {}
    }
    Ok(RtpTrack {
        kind,
        encoding: encoding.to_string(),
        payload_type: t.payload_type,
        clock_rate,
        channels: t.channels,
        ssrc: t.ssrc,
    })
}

fn tracks(request: &RtpRequest) -> Result<Vec<RtpTrack>, ApiError> {
    if request.tracks.is_empty() || request.tracks.len() > MAX_TRACKS {
        return Err(ApiError::bad_request(
            "tracks",
            "give one video track, one audio track, or one of each",
        ));
    }
    let tracks = request
        .tracks
        .iter()
        .enumerate()
        .map(|(i, t)| track(i, t))
        .collect::<Result<Vec<_>, _>>()?;
    if tracks.len() == 2 && tracks[0].kind == tracks[1].kind {
        return Err(ApiError::bad_request(
            "tracks[1].kind",
            "a second track of the same kind",
        ));
    }
    Ok(tracks)
}

fn source(text: &str) -> Result<DeclaredSource, ApiError> {
    if let Ok(address) = text.parse::<std::net::SocketAddr>() {
        return Ok(DeclaredSource {
            ip: address.ip(),
            port: Some(address.port()),
        });
    }
    let ip = text
        .parse()
        .map_err(|_| ApiError::bad_request("source", format!("`{text}` is not an IP address or IP:port")))?;
    Ok(DeclaredSource { ip, port: None })
}

/// The sender's key, used both ways: to check and decrypt what it sends, and for the RTCP we send back (our RTCP
/// has its own SSRC, so one master key may serve both directions, RFC 3711 §8.1; mediasoup's `connect()` then takes
/// the transport's own `srtpParameters`). Errors name the field and never quote the key.
fn srtp_keys(request: &SrtpRequest) -> Result<SrtpKeys, ApiError> {
    let key = SrtpKey::parse(&request.crypto_suite, &request.key_base64).map_err(|e| match e {
        SrtpKeyError::Suite(why) => ApiError::bad_request("srtp.crypto_suite", why),
        SrtpKeyError::Key(why) => ApiError::bad_request("srtp.key_base64", why),
    })?;
    let key = std::sync::Arc::new(key);
    Ok(SrtpKeys {
        receive: key.clone(),
        send: key,
    })
}

fn rtcp_return(i: usize, text: &str) -> Result<std::net::SocketAddr, ApiError> {
    text.parse().map_err(|_| {
        let shown: String = text.chars().take(60).collect();
        ApiError::bad_request(format!("tracks[{i}].rtcp_return"), format!("`{shown}` is not IP:port"))
    })
}

fn join_room(
    state: &AppState,
    room: &str,
    name: Option<String>,
    tracks: &[RtpTrack],
    transport: &Transport,
) -> Result<RtpJoined, ApiError> {
    state
        .rooms
        .join_rtp(room, name, tracks, transport)
        .map_err(|e| match e {
            RtpJoinError::Exhausted(full) => ApiError::unavailable(full.to_string(), EXHAUSTED_RETRY_S),
            RtpJoinError::Failed(e) => ApiError::with_status(StatusCode::INTERNAL_SERVER_ERROR, None, format!("{e:#}")),
        })
}

fn location(room: &str, id: &str) -> String {
    format!("/v1/rooms/{room}/rtp/{id}")
}

/// An SDP offer of a plain RTP session: `201` with the answer (our ports, the codec taken per section).
fn join_sdp(state: &AppState, room: &str, name: Option<&str>, body: &[u8]) -> Result<Response, ApiError> {
    let offer = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("sdp", "offer is not UTF-8 text"))?;
    let sections = rtp_sdp::read_offer(offer).map_err(|e| ApiError::bad_request("sdp", e))?;
    let tracks: Vec<RtpTrack> = sections
        .iter()
        .filter_map(|s| s.taken.as_ref().map(|t| t.track.clone()))
        .collect();
    let name = name.and_then(crate::call::display_name::clean);
    let transport = Transport {
        source: None,
        srtp: sections
            .iter()
            .filter_map(|s| s.taken.as_ref().map(|t| t.crypto.as_ref().map(|c| c.keys.clone())))
            .collect(),
        rtcp_mux: rtp_sdp::rtcp_mux(&sections),
        rtcp_return: Vec::new(),
    };
    let joined = join_room(state, room, name, &tracks, &transport)?;
    let answer = rtp_sdp::answer(
        &sections,
        &joined.address,
        &crate::wall_clock::now_ms().to_string(),
        &joined.tracks,
    );
    Ok((
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, "application/sdp".to_string()),
            (header::LOCATION, location(room, &joined.id)),
        ],
        answer,
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct JoinQuery {
    /// The display name of an SDP offer's participant (JSON requests carry `name` in the body).
    name: Option<String>,
}

pub async fn join(
    State(state): State<AppState>,
    Path(room): Path<String>,
    Query(query): Query<JoinQuery>,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    admit(&state, client, &room)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/sdp") {
        return join_sdp(&state, &room, query.name.as_deref(), &body);
    }
    if !content_type.starts_with("application/json") {
        return Err(ApiError::unsupported_media(
            "Content-Type must be application/json (tracks) or application/sdp (an RTP/AVP offer)",
        ));
    }
    let request: RtpRequest = super::json_body::parse(&body)?;
    let tracks = tracks(&request)?;
    let name = request.name.as_deref().and_then(crate::call::display_name::clean);
    let srtp = request.srtp.as_ref().map(srtp_keys).transpose()?;
    let rtcp_return = request
        .tracks
        .iter()
        .enumerate()
        .map(|(i, t)| t.rtcp_return.as_deref().map(|text| rtcp_return(i, text)).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    let transport = Transport {
        source: request.source.as_deref().map(source).transpose()?,
        srtp: vec![srtp; tracks.len()],
        rtcp_mux: request.rtcp_mux,
        rtcp_return,
    };
    let joined = join_room(&state, &room, name, &tracks, &transport)?;
    let location = location(&room, &joined.id);
    let tracks: Vec<_> = joined
        .tracks
        .iter()
        .map(|t| {
            json!({
                "kind": match t.kind { TrackKind::Video => "video", TrackKind::Audio => "audio" },
                "port": t.port,
                "rtcp_port": t.rtcp_port,
            })
        })
        .collect();
    let body = json!({
        "id": joined.id,
        "participant_id": joined.id,
        "address": joined.address,
        "tracks": tracks,
    });
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(body)).into_response())
}

pub async fn leave(
    State(state): State<AppState>,
    Path((room, participant)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    room_name(&room)?;
    if state.rooms.leave(&room, &participant, Via::Rtp) {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::not_found("participant"))
    }
}
