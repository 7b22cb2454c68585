//! The call we join: participants' connections (legs), their decoded taps, and the built-in WHIP rooms.

pub mod decode;
pub mod leg;
pub mod room;
pub mod tap;
pub mod webrtc;
