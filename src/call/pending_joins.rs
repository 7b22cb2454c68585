//! Joins that are not connected yet: admitted, answered, but no media so far. Each one holds a pipeline with
//! threads and sockets (a few per media section) until it connects or the media watchdog removes it, and anyone
//! who can reach the WHIP endpoint can open them, so their number is capped per client address, per room and
//! overall. A participant whose media flows no longer counts.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// Most joins waiting to connect at once; 0 means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingLimits {
    pub per_address: usize,
    pub per_room: usize,
    pub total: usize,
}

/// A join refused because too many are already waiting; worth retrying once some have connected or timed out.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{limit} WHIP sessions are already waiting to connect {scope} (setting `{setting}`)")]
pub struct PendingFull {
    pub scope: &'static str,
    pub setting: &'static str,
    pub limit: usize,
}

struct Entry {
    id: u64,
    room: String,
    origin: Option<IpAddr>,
    /// Whether media flows; None while the offer is being answered.
    connected: Option<Connected>,
}

type Connected = Box<dyn Fn() -> bool + Send>;

impl Entry {
    fn waiting(&self) -> bool {
        self.connected.as_ref().is_none_or(|connected| !connected())
    }
}

#[derive(Default)]
struct Table {
    next_id: u64,
    entries: Vec<Entry>,
}

pub struct PendingJoins {
    limits: PendingLimits,
    table: Arc<Mutex<Table>>,
}

impl PendingJoins {
    pub fn new(limits: PendingLimits) -> Self {
        Self {
            limits,
            table: Arc::default(),
        }
    }

    /// Counts a new join from `origin` (None: address unknown, counted in the room and overall only) into `room`,
    /// or says which limit it would pass.
    pub fn admit(&self, room: &str, origin: Option<IpAddr>) -> Result<PendingTicket, PendingFull> {
        let mut table = self.table.lock().unwrap();
        table.entries.retain(Entry::waiting);
        let from_origin = origin.map_or(0, |o| table.entries.iter().filter(|e| e.origin == Some(o)).count());
        let in_room = table.entries.iter().filter(|e| e.room == room).count();
        let checks = [
            (
                from_origin,
                self.limits.per_address,
                "from this address",
                "max_pending_joins_per_address",
            ),
            (
                in_room,
                self.limits.per_room,
                "in this room",
                "max_pending_joins_per_room",
            ),
            (
                table.entries.len(),
                self.limits.total,
                "on this server",
                "max_pending_joins",
            ),
        ];
        for (count, limit, scope, setting) in checks {
            if limit > 0 && count >= limit {
                return Err(PendingFull { scope, setting, limit });
            }
        }
        let id = table.next_id;
        table.next_id += 1;
        table.entries.push(Entry {
            id,
            room: room.to_string(),
            origin,
            connected: None,
        });
        Ok(PendingTicket {
            id,
            table: self.table.clone(),
        })
    }

    /// Joins waiting to connect now.
    pub fn waiting(&self) -> usize {
        self.table
            .lock()
            .unwrap()
            .entries
            .iter()
            .filter(|e| e.waiting())
            .count()
    }
}

/// A join's place among the waiting ones; dropping it (the join failed, or its leg is gone) frees the place.
pub struct PendingTicket {
    id: u64,
    table: Arc<Mutex<Table>>,
}

impl PendingTicket {
    /// From now on the join counts until `connected` says media flows (e.g. a participant's first buffer).
    pub fn answered(&self, connected: impl Fn() -> bool + Send + 'static) {
        let mut table = self.table.lock().unwrap();
        if let Some(entry) = table.entries.iter_mut().find(|e| e.id == self.id) {
            entry.connected = Some(Box::new(connected));
        }
    }
}

impl Drop for PendingTicket {
    fn drop(&mut self) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.entries.retain(|e| e.id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)));

    fn joins(per_address: usize, per_room: usize, total: usize) -> PendingJoins {
        PendingJoins::new(PendingLimits {
            per_address,
            per_room,
            total,
        })
    }

    #[test]
    fn each_limit_refuses_the_join_beyond_it_and_names_its_setting() {
        let pending = joins(2, 3, 4);
        let _a1 = pending.admit("r", A).expect("first");
        let _a2 = pending.admit("r", A).expect("second");
        let refused = pending.admit("r", A).err().expect("third from A");
        assert_eq!(refused.setting, "max_pending_joins_per_address");
        let _b1 = pending.admit("r", B).expect("B has its own count");
        assert_eq!(
            pending.admit("r", B).err().expect("room full").setting,
            "max_pending_joins_per_room"
        );
        let _other = pending.admit("other", None).expect("another room");
        assert_eq!(
            pending.admit("third", None).err().expect("server full").setting,
            "max_pending_joins"
        );
        assert_eq!(pending.waiting(), 4);
    }

    #[test]
    fn a_dropped_ticket_or_a_connected_participant_frees_the_place() {
        let pending = joins(1, 0, 0);
        let first = pending.admit("r", A).expect("first");
        assert!(pending.admit("r", A).is_err());
        drop(first);
        let second = pending.admit("r", A).expect("place freed by the drop");
        let media = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flows = media.clone();
        second.answered(move || flows.load(std::sync::atomic::Ordering::Relaxed));
        assert!(
            pending.admit("r", A).is_err(),
            "answered but no media yet: still waiting"
        );
        media.store(true, std::sync::atomic::Ordering::Relaxed);
        let _third = pending.admit("r", A).expect("media flows: no longer waiting");
        assert_eq!(pending.waiting(), 1);
    }

    #[test]
    fn zero_means_no_limit() {
        let pending = joins(0, 0, 0);
        let tickets: Vec<_> = (0..100).map(|_| pending.admit("r", A).expect("no limit")).collect();
        assert_eq!(pending.waiting(), tickets.len());
    }
}
