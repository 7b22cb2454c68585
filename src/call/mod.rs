//! The call we join: participants' connections (legs), their decoded taps, and the built-in WHIP rooms.

pub mod decode;
pub mod encoded_tap;
pub mod janus;
pub mod keyframes;
pub mod leg;
pub mod participant;
pub mod room;
pub mod source;
pub mod tap;
pub mod timeline;
pub mod webrtc;
