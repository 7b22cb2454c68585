//! The bench's real Janus (`callcast::tools::bench::janus`) for tests: panics instead of errors, and a failing test
//! keeps Janus' log.

use callcast::tools::bench::janus::JanusServer;
use std::path::Path;

pub use callcast::tools::bench::janus::{ROOM, ROOM_PIN};

pub struct Janus(JanusServer);

impl Janus {
    pub fn start() -> Self {
        Self(JanusServer::start().expect("start Janus"))
    }

    /// Kills Janus (SIGKILL) and starts it again on the same port with the same config.
    pub fn restart(&mut self) {
        self.0.restart().expect("restart Janus");
    }

    /// Kills Janus (SIGKILL) and leaves it down until `start_again`.
    pub fn kill(&mut self) {
        self.0.kill();
    }

    /// Starts Janus again after `kill`, on the same port with the same config (the room exists again, empty).
    pub fn start_again(&mut self) {
        self.0.start_again().expect("start Janus again");
    }

    /// `(display, publisher)` of everyone Janus lists in the room.
    pub fn list_participants(&self) -> Vec<(String, bool)> {
        self.0.list_participants().expect("Janus listparticipants")
    }
}

impl std::ops::Deref for Janus {
    type Target = JanusServer;

    fn deref(&self) -> &JanusServer {
        &self.0
    }
}

impl Drop for Janus {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join("failed-janus.log");
            let _ = std::fs::write(&kept, self.0.log());
            eprintln!("full Janus log: {}", kept.display());
        }
    }
}
