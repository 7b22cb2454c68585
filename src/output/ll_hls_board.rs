//! Where a low-latency HLS output tells the HTTP server how far it has got, so a blocking playlist reload
//! (`_HLS_msn`/`_HLS_part`, RFC 8216bis §6.2.5.2) can wait for the part it asks for. It lives as long as the
//! output (across its attempts) and keeps the playlist model, so a rebuilt pipeline goes on with it.

use super::ll_hls_playlist::LlPlaylist;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// What the playlist on disk lists now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// The number of the segment being written (every one before it is complete).
    pub next_msn: u64,
    /// Its parts listed so far.
    pub parts: u64,
    /// The playlist has its end list: nothing more will come.
    pub ended: bool,
    pub target_duration_s: u64,
}

impl Progress {
    /// Whether the playlist lists segment `msn` complete, or its part `part` (RFC 8216bis §6.2.5.2: "or later").
    pub fn has(&self, msn: u64, part: Option<u64>) -> bool {
        self.ended || msn < self.next_msn || part.is_some_and(|p| msn == self.next_msn && p < self.parts)
    }
}

/// Why a blocking request was not answered with the playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Further ahead than the last segment plus two: a 400 (§6.2.5.2).
    TooFar,
    /// Not there within three target durations: a 503.
    TimedOut,
}

#[derive(Clone)]
pub struct LlHlsBoard(Arc<Inner>);

struct Inner {
    progress: watch::Sender<Progress>,
    /// The playlist model, shared by the output's attempts (None before the first).
    playlist: Mutex<Option<LlPlaylist>>,
}

impl std::fmt::Debug for LlHlsBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LlHlsBoard").field(&*self.0.progress.borrow()).finish()
    }
}

impl Default for LlHlsBoard {
    fn default() -> Self {
        Self(Arc::new(Inner {
            progress: watch::channel(Progress::default()).0,
            playlist: Mutex::new(None),
        }))
    }
}

impl LlHlsBoard {
    pub fn progress(&self) -> Progress {
        *self.0.progress.borrow()
    }

    pub(super) fn publish(&self, progress: Progress) {
        self.0.progress.send_replace(progress);
    }

    pub(super) fn playlist(&self) -> std::sync::MutexGuard<'_, Option<LlPlaylist>> {
        self.0.playlist.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the playlist lists segment `msn` (or its part `part`), at most three target durations.
    pub async fn wait_for(&self, msn: u64, part: Option<u64>) -> Result<(), Refusal> {
        let now = self.progress();
        if msn > now.next_msn + 2 {
            return Err(Refusal::TooFar);
        }
        self.wait_within(msn, part, Duration::from_secs(3 * now.target_duration_s.max(1)))
            .await
    }

    async fn wait_within(&self, msn: u64, part: Option<u64>, deadline: Duration) -> Result<(), Refusal> {
        let mut updates = self.0.progress.subscribe();
        let reached = updates.wait_for(|p| p.has(msn, part));
        let outcome = match tokio::time::timeout(deadline, reached).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Refusal::TimedOut),
        };
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::{LlHlsBoard, Progress, Refusal};

    #[test]
    fn a_part_is_there_once_listed_or_once_its_segment_is_complete() {
        let p = Progress {
            next_msn: 4,
            parts: 2,
            ended: false,
            target_duration_s: 1,
        };
        assert!(
            p.has(3, Some(9)),
            "segment 3 is complete: anything asked of it is answered"
        );
        assert!(p.has(4, Some(1)));
        assert!(!p.has(4, Some(2)), "the hinted part");
        assert!(!p.has(4, None), "segment 4 is not complete");
        assert!(Progress { ended: true, ..p }.has(9, None));
    }

    #[tokio::test]
    async fn a_blocking_wait_ends_when_the_part_is_published_or_after_three_target_durations() {
        let board = LlHlsBoard::default();
        board.publish(Progress {
            next_msn: 1,
            parts: 0,
            ended: false,
            target_duration_s: 2,
        });
        assert_eq!(board.wait_for(4, None).await, Err(Refusal::TooFar));
        let waiting = tokio::spawn({
            let board = board.clone();
            async move { board.wait_for(1, Some(0)).await }
        });
        // Not answered while the part is missing (the deadline here is 6 s).
        let early = tokio::time::timeout(std::time::Duration::from_millis(50), async {
            while !waiting.is_finished() {
                tokio::task::yield_now().await;
            }
        });
        assert!(early.await.is_err(), "answered before the part was listed");
        board.publish(Progress {
            next_msn: 1,
            parts: 1,
            ended: false,
            target_duration_s: 2,
        });
        assert_eq!(waiting.await.unwrap(), Ok(()));
        let deadline = std::time::Duration::from_millis(100);
        let start = std::time::Instant::now();
        assert_eq!(board.wait_within(1, Some(1), deadline).await, Err(Refusal::TimedOut));
        assert!(start.elapsed() >= deadline);
    }
}
