//! Janus VideoRoom as the call: we subscribe to every publisher on one PeerConnection and never publish.

pub mod api;
mod layers;
pub mod messages;
mod peer;
mod source;
mod subscriber;

pub use source::JanusSource;

use secrecy::SecretString;

/// Where the Janus call is; pin and token are secrets.
#[derive(Clone, Debug)]
pub struct JanusTarget {
    /// Base URL of the HTTP API, e.g. `http://127.0.0.1:8088/janus`.
    pub url: String,
    pub room: u64,
    pub pin: Option<SecretString>,
    pub token: Option<SecretString>,
}
