//! A Janus VideoRoom as a call source: a hidden subscriber to every publisher of one room.

use super::subscriber;
use super::JanusTarget;
use crate::call::source::{CallSource, CallTask};
use crate::call::webrtc::IceConfig;
use futures::future::BoxFuture;

pub struct JanusSource {
    pub target: JanusTarget,
    pub ice: IceConfig,
    /// Jitter-buffer latency of the subscriber connection.
    pub latency_ms: u32,
}

impl CallSource for JanusSource {
    fn name(&self) -> &'static str {
        "janus"
    }

    fn follow(self: Box<Self>, task: CallTask) -> BoxFuture<'static, ()> {
        let JanusSource {
            target,
            ice,
            latency_ms,
        } = *self;
        Box::pin(subscriber::follow(target, ice, latency_ms, task))
    }
}
