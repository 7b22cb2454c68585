//! Processes the bench runs next to the server it measures, killed when their guard drops.

use anyhow::{bail, Result};
use std::ops::{Range, RangeInclusive};
use std::process::Child;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Kills (SIGKILL) and reaps a child process on drop.
pub struct Peer(pub Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Ports `free_port` hands out: below the RTP ports the tests' Janus uses (`janus::RTP_PORTS`) and below the
/// kernel's ephemeral range (32768-60999 by default, where every `:0` bind and outgoing connection gets its
/// port), so only `free_port` hands these out on a test machine.
pub const FREE_PORTS: Range<u16> = 10_000..20_000;

/// The next port to try, as an offset into `FREE_PORTS`; unset until the first call.
static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);

/// A port on 127.0.0.1 that is free now for TCP and UDP, never the same twice in a process. The server that
/// will listen on it is another process (nginx, Janus), so it cannot be handed a bound socket; another test
/// process could still take the same port, so each process starts at its own place in the range.
pub fn free_port() -> u16 {
    let span = u32::from(FREE_PORTS.end - FREE_PORTS.start);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(97) % span,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    let ephemeral = ephemeral_ports();
    for _ in 0..span {
        let port = FREE_PORTS.start + (NEXT.fetch_add(1, Ordering::Relaxed) % span) as u16;
        let free = std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok();
        if free && !ephemeral.contains(&port) {
            return port;
        }
    }
    0
}

/// The kernel's ephemeral port range (the default when it cannot be read).
pub fn ephemeral_ports() -> RangeInclusive<u16> {
    let read = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok();
    let bounds: Vec<u16> = read
        .iter()
        .flat_map(|text| text.split_whitespace())
        .filter_map(|n| n.parse().ok())
        .collect();
    match bounds[..] {
        [low, high] => low..=high,
        _ => 32768..=60999,
    }
}

/// Polls `check` every 50 ms until it returns Some, or fails after `timeout`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_never_handed_out_twice_and_stay_out_of_the_ephemeral_and_janus_ranges() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "{ports:?}");
        let ephemeral = ephemeral_ports();
        let janus = super::super::janus::RTP_PORTS;
        for port in ports {
            assert!(FREE_PORTS.contains(&port), "{port}");
            assert!(!ephemeral.contains(&port) && !janus.contains(&port), "{port}");
        }
        assert!(
            janus.end <= *ephemeral.start(),
            "Janus' RTP ports reach into the ephemeral range"
        );
    }
}
