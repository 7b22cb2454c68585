//! `/metrics` (Prometheus text format, prometheus-client) and `/readyz`. Figures are read from the broadcasts'
//! statuses at scrape time, so nothing on the media path ever touches a metric.

use super::AppState;
use crate::broadcast::status::{BroadcastState, OutputState};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut registry = Registry::default();
    let broadcasts = Family::<Labels, Gauge>::default();
    let participants = Family::<Labels, Gauge>::default();
    let frames = Family::<Labels, Counter>::default();
    let dropped = Family::<Labels, Counter>::default();
    let fps = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    let output_bytes = Family::<Labels, Counter>::default();
    let output_reconnects = Family::<Labels, Counter>::default();
    let output_live = Family::<Labels, Gauge>::default();
    let whep_viewers = Family::<Labels, Gauge>::default();
    let start = Histogram::new([0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]);
    registry.register("callcast_broadcasts", "Broadcasts by state", broadcasts.clone());
    registry.register(
        "callcast_participants",
        "Participants in each running broadcast",
        participants.clone(),
    );
    registry.register(
        "callcast_frames_encoded",
        "Video frames encoded per broadcast",
        frames.clone(),
    );
    registry.register(
        "callcast_frames_dropped",
        "Video frames missing from the output's timeline per broadcast",
        dropped.clone(),
    );
    registry.register(
        "callcast_output_fps",
        "Video frames encoded per second over the last second, per broadcast",
        fps.clone(),
    );
    registry.register(
        "callcast_output_bytes",
        "Bytes sent or written by each output",
        output_bytes.clone(),
    );
    registry.register(
        "callcast_output_reconnects",
        "Reconnect attempts of each output",
        output_reconnects.clone(),
    );
    registry.register(
        "callcast_output_live",
        "1 while the output is live",
        output_live.clone(),
    );
    registry.register(
        "callcast_whep_viewers",
        "Viewers connected to each whep output",
        whep_viewers.clone(),
    );
    registry.register(
        "callcast_start_seconds",
        "From POST to the first encoded frame",
        start.clone(),
    );

    for state_name in ["starting", "live", "stopping", "ended", "failed"] {
        // Every state is listed, at 0 when no broadcast is in it.
        broadcasts.get_or_create(&labels(&[("state", state_name)])).set(0);
    }
    for b in state.broadcasts.list() {
        let name = serde_json::to_value(b.state).ok();
        let state_name = name.as_ref().and_then(|v| v.as_str()).unwrap_or("unknown");
        broadcasts.get_or_create(&labels(&[("state", state_name)])).inc();
        if let Some(live_at) = b.live_at_ms {
            start.observe(live_at.saturating_sub(b.created_at_ms) as f64 / 1000.0);
        }
        if b.state.is_final() {
            continue;
        }
        let id = labels(&[("broadcast_id", &b.id)]);
        participants.get_or_create(&id).set(b.participants.len() as i64);
        // An audio-only broadcast has no frames: no video series for it.
        if let (Some(out), Some(drop), Some(rate)) = (b.frames_out, b.frames_dropped, b.fps_out) {
            frames.get_or_create(&id).inc_by(out);
            dropped.get_or_create(&id).inc_by(drop);
            fps.get_or_create(&id).set(rate);
        }
        for o in &b.outputs {
            let l = labels(&[("broadcast_id", &b.id), ("output_id", &o.id), ("kind", &o.kind)]);
            output_bytes.get_or_create(&l).inc_by(o.bytes);
            output_reconnects.get_or_create(&l).inc_by(u64::from(o.reconnects));
            output_live
                .get_or_create(&l)
                .set(i64::from(o.state == OutputState::Live));
            if let Some(viewers) = o.viewers {
                whep_viewers.get_or_create(&l).set(i64::from(viewers));
            }
        }
    }
    upload_metrics(&mut registry, &state);
    if let Some(crate::procstat::Usage {
        cpu_s: cpu,
        rss_bytes: rss,
        ..
    }) = crate::procstat::usage("self")
    {
        let cpu_seconds = Counter::<f64, AtomicU64>::default();
        cpu_seconds.inc_by(cpu);
        registry.register("process_cpu_seconds", "CPU time of this process", cpu_seconds);
        let resident = Gauge::<i64>::default();
        resident.set(rss as i64);
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of this process",
            resident,
        );
    }
    let mut text = String::new();
    if encode(&mut text, &registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Uploads to object storage per output (`{broadcast id}/{output id}`), since this server started.
fn upload_metrics(registry: &mut Registry, state: &AppState) {
    let uploaded = Family::<Labels, Counter>::default();
    let files = Family::<Labels, Counter>::default();
    let failures = Family::<Labels, Counter>::default();
    let pending = Family::<Labels, Gauge>::default();
    registry.register(
        "callcast_upload_bytes",
        "Bytes uploaded to object storage",
        uploaded.clone(),
    );
    registry.register(
        "callcast_upload_files",
        "Files uploaded to object storage",
        files.clone(),
    );
    registry.register("callcast_upload_failures", "Failed upload attempts", failures.clone());
    registry.register(
        "callcast_upload_pending",
        "Files waiting to be uploaded",
        pending.clone(),
    );
    for (owner, stats) in state.broadcasts.upload_stats() {
        let (broadcast_id, output_id) = owner.split_once('/').unwrap_or((owner.as_str(), ""));
        let l = labels(&[("broadcast_id", broadcast_id), ("output_id", output_id)]);
        uploaded.get_or_create(&l).inc_by(stats.uploaded_bytes);
        files.get_or_create(&l).inc_by(stats.uploaded_files);
        failures.get_or_create(&l).inc_by(stats.failures);
        pending.get_or_create(&l).set(stats.pending as i64);
    }
}

/// Ready when every element we need is installed and a default broadcast would be admitted now.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let mut problems: Vec<String> = crate::gst_util::missing_factories()
        .into_iter()
        .map(|name| format!("GStreamer element {name} is missing (run deploy/install-deps.sh)"))
        .collect();
    if let Err(refusal) = state.broadcasts.would_admit_default() {
        problems.push(refusal.to_string());
    }
    let running = state
        .broadcasts
        .list()
        .iter()
        .filter(|b| !matches!(b.state, BroadcastState::Ended | BroadcastState::Failed))
        .count();
    let body = serde_json::json!({"ready": problems.is_empty(), "problems": problems, "running": running});
    let code = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}
