//! The call we join: sources behind one trait (`source::CallSource`: the built-in WHIP rooms, Janus, WHEP servers), participants'
//! connections (legs), their decoded taps.

pub mod decode;
pub mod display_name;
pub mod encoded_tap;
pub mod ice_restart;
pub mod janus;
pub mod keyframes;
pub mod leg;
pub mod participant;
pub mod peer_wiring;
pub mod pending_joins;
pub mod room;
pub mod room_source;
pub mod rtp_leg;
pub mod rtp_ports;
pub mod rtp_sdp;
pub mod rtp_srtp;
pub mod rtp_track;
pub mod sdp_offer;
pub mod source;
pub mod tap;
pub mod timeline;
pub mod trickle;
pub mod webrtc;
pub mod whep_pull;
pub mod whep_source;
