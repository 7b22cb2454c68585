//! Requests per second per client address (a token bucket each): for routes anyone may call, such as WHIP
//! without a room token, so one client cannot take every place the server has.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Beyond this many addresses tracked, full buckets (idle clients) are forgotten, at most once a second.
const PRUNE_ABOVE: usize = 4096;
const PRUNE_EVERY: Duration = Duration::from_secs(1);

pub struct RateLimit {
    per_second: u32,
    state: Mutex<State>,
}

struct State {
    buckets: HashMap<IpAddr, Bucket>,
    pruned_at: Instant,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    /// `per_second` requests per second per address, in bursts of as many; 0 means no limit.
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second,
            state: Mutex::new(State {
                buckets: HashMap::new(),
                pruned_at: Instant::now(),
            }),
        }
    }

    /// Takes one request's place for `address`, or says how long until there is one.
    pub fn take(&self, address: IpAddr) -> Result<(), Duration> {
        self.take_at(address, Instant::now())
    }

    fn take_at(&self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.per_second == 0 {
            return Ok(());
        }
        let rate = f64::from(self.per_second);
        let mut state = self.state.lock().unwrap();
        if state.buckets.len() > PRUNE_ABOVE && now.saturating_duration_since(state.pruned_at) >= PRUNE_EVERY {
            state.buckets.retain(|_, b| refilled(*b, now, rate) < rate);
            state.pruned_at = now;
        }
        let key = client_key(address);
        let bucket = state.buckets.entry(key).or_insert(Bucket { tokens: rate, at: now });
        let tokens = refilled(*bucket, now, rate);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at: now };
            Err(Duration::from_secs_f64((1.0 - tokens) / rate))
        }
    }
}

fn refilled(bucket: Bucket, now: Instant, rate: f64) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    (bucket.tokens + elapsed * rate).min(rate)
}

/// One client, one key: an IPv4 address, or an IPv6 /64 (the least a site is given, so one client has them all).
fn client_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_burst_beyond_the_rate_waits_and_the_bucket_refills() {
        let limit = RateLimit::new(4);
        let start = Instant::now();
        for _ in 0..4 {
            limit.take_at(ip("192.0.2.1"), start).expect("within the burst");
        }
        let wait = limit
            .take_at(ip("192.0.2.1"), start)
            .expect_err("fifth in the same instant");
        assert_eq!(wait, Duration::from_millis(250));
        limit
            .take_at(ip("192.0.2.2"), start)
            .expect("another address has its own bucket");
        limit
            .take_at(ip("192.0.2.1"), start + Duration::from_millis(250))
            .expect("one place back after a quarter second");
        assert!(limit
            .take_at(ip("192.0.2.1"), start + Duration::from_millis(260))
            .is_err());
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64_and_mapped_ipv4_is_ipv4() {
        let limit = RateLimit::new(1);
        let now = Instant::now();
        limit.take_at(ip("2001:db8:1:2::1"), now).expect("first");
        assert!(limit.take_at(ip("2001:db8:1:2:ffff::9"), now).is_err(), "same /64");
        limit.take_at(ip("2001:db8:1:3::1"), now).expect("another /64");
        limit.take_at(ip("198.51.100.7"), now).expect("first");
        assert!(
            limit.take_at(ip("::ffff:198.51.100.7"), now).is_err(),
            "the same client"
        );
    }

    #[test]
    fn zero_is_no_limit_and_idle_clients_are_forgotten() {
        let open = RateLimit::new(0);
        let now = Instant::now();
        assert!((0..1000).all(|_| open.take_at(ip("192.0.2.1"), now).is_ok()));
        let limit = RateLimit::new(10);
        for i in 0..=PRUNE_ABOVE as u32 {
            limit.take_at(IpAddr::V4(i.into()), now).expect("first request");
        }
        limit.take_at(ip("192.0.2.1"), now + 2 * PRUNE_EVERY).expect("later");
        assert_eq!(limit.state.lock().unwrap().buckets.len(), 1, "idle clients pruned");
    }
}
