//! callcast: joins a video call as a hidden participant, composites it and broadcasts to RTMP and HLS.

pub mod api;
pub mod broadcast;
pub mod call;
pub mod config;
pub mod config_check;
pub mod events;
#[cfg(test)]
mod glib_watch;
pub mod gst_util;
pub mod ids;
pub mod layout;
pub mod mix;
pub mod output;
pub mod procstat;
pub mod run;
pub mod secret;
pub mod server;
pub mod storage;
pub mod tools;
pub mod wall_clock;
pub mod webhooks;
