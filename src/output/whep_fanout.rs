//! One buffer to every viewer of a WHEP station. Pushing into a viewer is work on the pushing thread (its
//! payloader, RTP session, SRTP and socket run there), so a few viewers are served inline on the station's
//! streaming thread, and many are spread over a pool with a thread per core: one thread would be the ceiling of
//! how many viewers a broadcast can have.

use std::sync::OnceLock;

/// Viewers served inline; beyond, chunks of at least this many go to the pool. A chunk must be worth a thread's
/// wake (a push into a viewer costs tens of microseconds; a wake, a few).
const INLINE_VIEWERS: usize = 16;

fn pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
            .thread_name(|i| format!("whep-send-{i}"))
            .build()
            .expect("the WHEP send pool")
    })
}

/// Calls `push` once for each of `items`, inline when they are few, otherwise spread over the pool (returning
/// when all are done).
pub fn for_each_spread<T: Sync>(items: &[T], push: impl Fn(&T) + Sync) {
    if items.len() <= INLINE_VIEWERS {
        items.iter().for_each(push);
        return;
    }
    let threads = pool().current_num_threads().max(1);
    let chunk = items.len().div_ceil(threads).max(INLINE_VIEWERS);
    let push = &push;
    pool().scope(|scope| {
        for part in items.chunks(chunk) {
            scope.spawn(move |_| part.iter().for_each(push));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    #[test]
    fn few_items_are_pushed_on_the_calling_thread() {
        let here = std::thread::current().id();
        let threads = Mutex::new(Vec::new());
        for_each_spread(&[0u8; 16], |_| {
            threads.lock().unwrap().push(std::thread::current().id())
        });
        let threads = threads.into_inner().unwrap();
        assert_eq!(threads.len(), 16);
        assert!(threads.iter().all(|t| *t == here));
    }

    #[test]
    fn many_items_are_each_pushed_once_off_the_calling_thread() {
        let counts: Vec<AtomicU32> = (0..200).map(|_| AtomicU32::new(0)).collect();
        let here = std::thread::current().id();
        let off = AtomicU32::new(0);
        let indices: Vec<usize> = (0..200).collect();
        for_each_spread(&indices, |&i| {
            counts[i].fetch_add(1, Ordering::Relaxed);
            if std::thread::current().id() != here {
                off.fetch_add(1, Ordering::Relaxed);
            }
        });
        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
        assert_eq!(off.load(Ordering::Relaxed), 200, "pushed on the pool's threads");
    }
}
