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

    /// How many parts past the last one listed part `part` of segment `msn` is (0 or less: listed). Exact in
    /// the open segment; in later ones each segment is taken as a target duration's worth of parts.
    fn parts_ahead(&self, msn: u64, part: u64, part_target_ms: u64) -> i128 {
        let per_segment = (self.target_duration_s.max(1) * 1000).div_ceil(part_target_ms.max(1));
        let segments = i128::from(msn) - i128::from(self.next_msn);
        segments * i128::from(per_segment) + i128::from(part) + 1 - i128::from(self.parts)
    }

    /// RFC 8216bis §6.2.5.2: a request for a part further ahead of the last one listed than the Advance Part
    /// Limit (three divided by the part target when that is under a second, three otherwise) is refused.
    fn part_too_far(&self, msn: u64, part: u64, part_target_ms: u64) -> bool {
        !self.has(msn, Some(part))
            && self.parts_ahead(msn, part, part_target_ms) * i128::from(part_target_ms.min(1000)) > 3000
    }
}

/// Held blocking requests at most per output; a request past them is answered 503 at once.
pub const MAX_WAITERS: usize = 256;

/// Why a blocking request was not answered with the playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `_HLS_msn` further ahead than the last segment plus two: a 400 (§6.2.5.2).
    SegmentTooFar,
    /// `_HLS_part` further ahead of the last part than the Advance Part Limit: a 400 (§6.2.5.2).
    PartTooFar,
    /// As many requests held as the output takes: a 503.
    Busy,
    /// Not there within three target durations: a 503.
    TimedOut,
}

#[derive(Clone)]
pub struct LlHlsBoard(Arc<Inner>);

struct Inner {
    progress: watch::Sender<Progress>,
    /// The playlist model, shared by the output's attempts (None before the first).
    playlist: Mutex<Option<LlPlaylist>>,
    /// The encoder's keyframe interval, for the cutter to keep segments within the target duration.
    keyframe_interval: Duration,
    /// A permit for each request held.
    waiters: tokio::sync::Semaphore,
    /// With a rendition ladder: each rendition's board by its folder (`360p`), the main one first; this board
    /// then lists nothing itself (its `index.m3u8` is the multivariant playlist, which never blocks).
    renditions: Vec<(String, LlHlsBoard)>,
}

impl std::fmt::Debug for LlHlsBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LlHlsBoard").field(&*self.0.progress.borrow()).finish()
    }
}

impl LlHlsBoard {
    /// The board of an output of a broadcast whose encoder makes a keyframe every `keyframe_interval_s`.
    pub fn new(keyframe_interval_s: u32) -> Self {
        Self::ladder(keyframe_interval_s, Vec::new())
    }

    /// The board of an output with a rendition ladder: a board per rendition `folders` names (the main one first).
    pub fn ladder(keyframe_interval_s: u32, folders: Vec<String>) -> Self {
        let renditions = folders
            .into_iter()
            .map(|folder| (folder, Self::new(keyframe_interval_s)))
            .collect();
        Self(Arc::new(Inner {
            progress: watch::channel(Progress::default()).0,
            playlist: Mutex::new(None),
            keyframe_interval: Duration::from_secs(u64::from(keyframe_interval_s.max(1))),
            waiters: tokio::sync::Semaphore::new(MAX_WAITERS),
            renditions,
        }))
    }

    /// The renditions' boards by folder, the main one first (none without a ladder).
    pub fn renditions(&self) -> &[(String, LlHlsBoard)] {
        &self.0.renditions
    }

    /// The board of the rendition in `folder`.
    pub fn rendition(&self, folder: &str) -> Option<LlHlsBoard> {
        self.0
            .renditions
            .iter()
            .find(|(f, _)| f == folder)
            .map(|(_, b)| b.clone())
    }

    pub fn keyframe_interval(&self) -> Duration {
        self.0.keyframe_interval
    }

    pub fn progress(&self) -> Progress {
        *self.0.progress.borrow()
    }

    #[cfg(test)]
    pub(super) fn subscribe(&self) -> watch::Receiver<Progress> {
        self.0.progress.subscribe()
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
            return Err(Refusal::SegmentTooFar);
        }
        if part.is_some_and(|p| now.part_too_far(msn, p, super::ll_hls::PART_TARGET_MS)) {
            return Err(Refusal::PartTooFar);
        }
        if now.has(msn, part) {
            return Ok(());
        }
        let Ok(_held) = self.0.waiters.try_acquire() else {
            return Err(Refusal::Busy);
        };
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
    use super::{LlHlsBoard, Progress, Refusal, MAX_WAITERS};

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
        // Parts of 334 ms: the Advance Part Limit is 3 / 0.334 = 8.98 parts past the last listed (4.1); segments
        // of 1 s count three parts each.
        assert!(!p.part_too_far(4, 9, 334), "8 parts ahead");
        assert!(p.part_too_far(4, 10, 334), "9 parts ahead");
        assert!(!p.part_too_far(6, 2, 334), "2 * 3 + 2 + 1 - 2 = 7 parts ahead");
        assert!(p.part_too_far(6, 4, 334), "9 parts ahead");
        assert!(!p.part_too_far(3, 50, 334), "in a complete segment");
        // Parts of a second or more: three parts.
        assert!(!p.part_too_far(4, 4, 1000) && p.part_too_far(4, 5, 1000));
    }

    #[tokio::test]
    async fn a_blocking_wait_ends_when_the_part_is_published_or_after_three_target_durations() {
        let board = LlHlsBoard::new(1);
        board.publish(Progress {
            next_msn: 1,
            parts: 0,
            ended: false,
            target_duration_s: 2,
        });
        assert_eq!(board.wait_for(4, None).await, Err(Refusal::SegmentTooFar));
        assert_eq!(board.wait_for(1, Some(9)).await, Err(Refusal::PartTooFar));
        // Every permit taken: the next request that would be held is refused at once; one listed is answered.
        let taken = board.0.waiters.try_acquire_many(MAX_WAITERS as u32).unwrap();
        assert_eq!(board.wait_for(1, Some(0)).await, Err(Refusal::Busy));
        assert_eq!(board.wait_for(0, None).await, Ok(()));
        drop(taken);
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
