//! A broadcast started through the HTTP API of a test server, with the paths tests look at.

use super::{get_json, http, Server};
use serde_json::Value;
use std::path::PathBuf;

pub struct Broadcast {
    pub id: String,
    pub status_url: String,
    /// The HLS playlist on disk (tests read segments directly).
    pub playlist: PathBuf,
}

impl Broadcast {
    /// POSTs `body` to /v1/broadcasts and expects 201.
    pub fn start(server: &Server, body: &Value) -> Self {
        let response = http()
            .post(server.url("/v1/broadcasts"))
            .json(body)
            .send()
            .expect("POST /v1/broadcasts");
        assert_eq!(response.status(), 201, "POST /v1/broadcasts");
        let created: Value = response.json().expect("json");
        let id = created["id"].as_str().expect("id").to_string();
        Self {
            status_url: server.url(&format!("/v1/broadcasts/{id}")),
            playlist: server
                .data_dir
                .path()
                .join(format!("data/broadcasts/{id}/hls/index.m3u8")),
            id,
        }
    }

    pub fn status(&self) -> Value {
        get_json(&self.status_url)
    }

    /// DELETE: returns the final status.
    pub fn stop(&self) -> Value {
        http()
            .delete(&self.status_url)
            .send()
            .and_then(|r| r.json())
            .expect("DELETE broadcast")
    }

    /// `callcast_output_bytes_total` of output `output_id` in `/metrics` (None while it is not there).
    pub fn bytes_metric(&self, server: &Server, output_id: &str) -> Option<u64> {
        let text = http().get(server.url("/metrics")).send().ok()?.text().ok()?;
        let broadcast = format!("broadcast_id=\"{}\"", self.id);
        let output = format!("output_id=\"{output_id}\"");
        let line = text
            .lines()
            .find(|l| l.starts_with("callcast_output_bytes_total{") && l.contains(&broadcast) && l.contains(&output))?;
        line.rsplit(' ').next()?.parse().ok()
    }

    /// Output `output_id` in a status (Null if absent).
    pub fn output(status: &Value, output_id: &str) -> Value {
        status["outputs"]
            .as_array()
            .and_then(|o| o.iter().find(|o| o["id"] == output_id))
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Waits for `n` segments after the ones listed now, and returns the video frames in those `n` and their
    /// frame rate (frames over the span of their timestamps).
    pub fn frame_rate_over_next_segments(&self, n: usize) -> (usize, f64) {
        let seen = self.segments().len();
        super::wait_for(
            "more segments",
            std::time::Duration::from_secs(10 + 5 * n as u64),
            || (self.segments().len() >= seen + n).then_some(()),
        );
        let pts: Vec<f64> = self.segments()[seen..seen + n]
            .iter()
            .flat_map(|s| super::media::video_pts(s.to_str().expect("path")))
            .collect();
        let span = pts.iter().cloned().fold(f64::MIN, f64::max) - pts.iter().cloned().fold(f64::MAX, f64::min);
        (pts.len(), (pts.len() as f64 - 1.0) / span)
    }

    /// Segment files listed in the playlist, oldest first.
    pub fn segments(&self) -> Vec<PathBuf> {
        let text = std::fs::read_to_string(&self.playlist).unwrap_or_default();
        let dir = self.playlist.parent().expect("playlist dir");
        text.lines()
            .filter(|l| l.ends_with(".ts"))
            .map(|l| dir.join(l))
            .collect()
    }
}

/// PATCHes `body` to broadcast `id`: the status code and the reply (Null when it is not JSON).
pub fn patch_broadcast(server: &Server, id: &str, body: Value) -> (u16, Value) {
    let r = http()
        .patch(server.url(&format!("/v1/broadcasts/{id}")))
        .json(&body)
        .send()
        .expect("PATCH");
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

/// Participant names in a status, in order.
pub fn participant_names(status: &Value) -> Vec<String> {
    status["participants"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
