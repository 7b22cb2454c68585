//! Users' and tests' tools, apart from the product: the bench, the synthetic publishers (WHIP and Janus), the
//! demo, and the clock stamps and sync marks those publishers draw. Product modules never import this module.

pub mod bench;
pub mod clock_stamp;
pub mod demo;
pub mod janus_publisher;
pub mod orphan;
pub mod publish;
mod publish_rtp;
pub mod replay;
pub mod sync_marks;
