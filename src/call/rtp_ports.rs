//! UDP ports for plain RTP participants: pairs (RTP on an even port, RTCP on the next) from a configured range,
//! each held by a lease that gives it back when the participant goes.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// `first-last`, both inclusive, as configured (`rtp_port_range = "40000-40999"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl std::str::FromStr for PortRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (first, last) = text
            .split_once('-')
            .ok_or_else(|| format!("`{text}` is not a range like 40000-40999"))?;
        let port = |s: &str| {
            s.trim()
                .parse::<u16>()
                .map_err(|_| format!("`{}` is not a port number", s.trim()))
        };
        let (first, last) = (port(first)?, port(last)?);
        if first == 0 || last <= first {
            return Err(format!("`{text}` must name at least two ports, lowest first, above 0"));
        }
        Ok(Self { first, last })
    }
}

impl PortRange {
    /// The RTP ports of every pair in the range (even, with the odd RTCP port after it still inside).
    fn pairs(&self) -> impl Iterator<Item = u16> {
        let start = self.first + self.first % 2;
        (u32::from(start)..u32::from(self.last)).step_by(2).map(|p| p as u16)
    }
}

/// No pair of the range is free.
#[derive(Debug, thiserror::Error)]
#[error("no free RTP ports left in rtp_port_range {first}-{last}")]
pub struct PortsExhausted {
    pub first: u16,
    pub last: u16,
}

/// The server's pairs, handed out once each, in turn: a freed pair is leased again last, so a sender still aiming
/// at it after its participant left does not reach (and, being first, lock) the next participant's socket.
pub struct RtpPorts {
    range: PortRange,
    taken: Arc<Mutex<BTreeSet<u16>>>,
    /// The RTP port leased last.
    last: Mutex<Option<u16>>,
}

/// One pair held by a participant's track; dropping it frees the pair.
#[derive(Debug)]
pub struct PortLease {
    pub rtp: u16,
    taken: Arc<Mutex<BTreeSet<u16>>>,
}

impl PortLease {
    pub fn rtcp(&self) -> u16 {
        self.rtp + 1
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.taken.lock().unwrap().remove(&self.rtp);
    }
}

impl RtpPorts {
    pub fn new(range: PortRange) -> Self {
        Self {
            range,
            taken: Arc::default(),
            last: Mutex::new(None),
        }
    }

    /// The next free pair after the one leased last, not in `skip` (pairs another process turned out to hold).
    pub fn lease(&self, skip: &BTreeSet<u16>) -> Result<PortLease, PortsExhausted> {
        let mut taken = self.taken.lock().unwrap();
        let mut last = self.last.lock().unwrap();
        let after = last.unwrap_or(0);
        let rtp = self
            .range
            .pairs()
            .filter(|p| *p > after)
            .chain(self.range.pairs().filter(|p| *p <= after))
            .find(|p| !taken.contains(p) && !skip.contains(p))
            .ok_or(PortsExhausted {
                first: self.range.first,
                last: self.range.last,
            })?;
        taken.insert(rtp);
        *last = Some(rtp);
        Ok(PortLease {
            rtp,
            taken: self.taken.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_refuse_nonsense() {
        assert_eq!(
            "40000-40999".parse::<PortRange>().unwrap(),
            PortRange {
                first: 40000,
                last: 40999
            }
        );
        for bad in ["40000", "5-5", "9-3", "0-10", "a-b", "1-70000"] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn pairs_are_even_inside_the_range_and_come_back_when_dropped() {
        // 41001-41006 holds the pairs (41002, 41003) and (41004, 41005); 41006 has no RTCP port after it.
        let ports = RtpPorts::new("41001-41006".parse().unwrap());
        let none = BTreeSet::new();
        let a = ports.lease(&none).unwrap();
        let b = ports.lease(&none).unwrap();
        assert_eq!((a.rtp, a.rtcp(), b.rtp, b.rtcp()), (41002, 41003, 41004, 41005));
        assert!(ports.lease(&none).is_err());
        drop(a);
        assert_eq!(ports.lease(&none).unwrap().rtp, 41002);
        let skip = BTreeSet::from([41002]);
        drop(b);
        assert_eq!(ports.lease(&skip).unwrap().rtp, 41004);
    }

    #[test]
    fn a_freed_pair_is_leased_again_last() {
        let ports = RtpPorts::new("41000-41005".parse().unwrap());
        let none = BTreeSet::new();
        let a = ports.lease(&none).unwrap();
        assert_eq!(a.rtp, 41000);
        drop(a);
        let b = ports.lease(&none).unwrap();
        let c = ports.lease(&none).unwrap();
        assert_eq!((b.rtp, c.rtp), (41002, 41004));
        drop(b);
        assert_eq!(ports.lease(&none).unwrap().rtp, 41000);
    }
}
