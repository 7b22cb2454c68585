//! The server's event stream (`GET /v1/events`, SSE) as a test reads it.

use std::io::BufRead;

/// Reads `/v1/events` in a thread; each event's JSON arrives on the channel.
pub fn follow_events(server: &super::Server) -> std::sync::mpsc::Receiver<serde_json::Value> {
    let response = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .expect("client")
        .get(server.url("/v1/events"))
        .send()
        .expect("GET /v1/events");
    assert_eq!(response.status().as_u16(), 200);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(response).lines() {
            let Ok(line) = line else { return };
            if let Some(data) = line.strip_prefix("data:") {
                if let Ok(event) = serde_json::from_str::<serde_json::Value>(data.trim()) {
                    if tx.send(event).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// The first event that `matches`, among those already in `seen` or arriving within `timeout` (every event read
/// is kept in `seen`, for the next wait).
pub fn wait_event(
    events: &std::sync::mpsc::Receiver<serde_json::Value>,
    seen: &mut Vec<serde_json::Value>,
    what: &str,
    timeout: std::time::Duration,
    matches: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(found) = seen.iter().find(|e| matches(e)) {
            return found.clone();
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match events.recv_timeout(left) {
            Ok(event) => seen.push(event),
            Err(_) => panic!("no event {what} within {timeout:?}; saw {seen:?}"),
        }
    }
}
