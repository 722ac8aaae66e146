//! Where every source hands its events to the live pipeline: a bounded queue
//! with counters. Receivers are refused (and told to retry) when the queue is
//! full or memory is over the limiter's soft mark; followed files wait
//! instead. Whatever is accepted is correlated and emitted — nothing is
//! dropped after the sender was told "accepted".

use super::memory::{Level, Limiter};
use crate::event::Event;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

/// Messages (not events) the queue holds at most; events are bounded separately.
const QUEUE_MESSAGES: usize = 4096;

/// A followed file waits at most this long per batch for memory to fall below
/// the soft mark; after that its lines go in and the hard mark sheds, so that
/// a limit set below the process's floor cannot stop a file for good.
const MEMORY_WAIT: Duration = Duration::from_secs(5);

pub enum Msg {
    Events(Vec<Event>, Vec<Vec<String>>),
    /// Every source has stopped: close all requests and finish.
    Shutdown,
}

/// The server's own counters, reported in the live summary line.
#[derive(Debug, Default)]
pub struct Counters {
    pub spans: AtomicU64,
    pub logs: AtomicU64,
    pub lines: AtomicU64,
    /// Messages accepted, by protocol.
    pub grpc_messages: AtomicU64,
    pub http_messages: AtomicU64,
    /// Spans refused one by one inside an accepted message (partial success).
    pub spans_rejected: AtomicU64,
    /// Messages refused whole: queue full (retryable).
    pub refused_busy: AtomicU64,
    /// Messages refused whole: memory over the soft mark (retryable).
    pub refused_memory: AtomicU64,
    /// Messages refused whole: undecodable or of a wrong media type
    /// (permanent: gRPC INVALID_ARGUMENT, HTTP 400/415).
    pub refused_invalid: AtomicU64,
    /// Messages refused whole: over `--max-message`, compressed or once
    /// decompressed (gRPC RESOURCE_EXHAUSTED, HTTP 413).
    pub refused_oversize: AtomicU64,
    /// Messages refused whole: missing or wrong bearer token.
    pub refused_auth: AtomicU64,
    /// Followed lines no definition could parse.
    pub line_errors: AtomicU64,
    pub emitted: AtomicU64,
    pub failed: AtomicU64,
    pub open: AtomicU64,
    pub buffered: AtomicU64,
    pub evicted: AtomicU64,
    pub aged: AtomicU64,
    pub amended: AtomicU64,
    pub late: AtomicU64,
}

impl Counters {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

pub struct Intake {
    tx: SyncSender<Msg>,
    /// Events sent and not yet taken by the pipeline.
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    pub counters: Arc<Counters>,
    pub memory: Arc<Limiter>,
}

/// The receiving end, for the pipeline thread.
pub struct Outlet {
    pub rx: Receiver<Msg>,
    pub queued: Arc<AtomicUsize>,
}

/// Why a sender should retry later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// The queue is full.
    Queue,
    /// Memory is over the soft mark.
    Memory,
}

pub fn channel(max_queued: usize, memory: Arc<Limiter>) -> (Arc<Intake>, Outlet) {
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_MESSAGES);
    let queued = Arc::new(AtomicUsize::new(0));
    (
        Arc::new(Intake {
            tx,
            queued: queued.clone(),
            max_queued,
            counters: Arc::new(Counters::default()),
            memory,
        }),
        Outlet { rx, queued },
    )
}

impl Intake {
    /// Whether a receiver should refuse a message before decoding it.
    pub fn busy(&self) -> Option<Busy> {
        (self.memory.level() >= Level::Soft).then_some(Busy::Memory)
    }

    /// Queues events now or refuses them whole (receivers).
    pub fn offer(&self, events: Vec<Event>) -> Result<(), Busy> {
        let n = events.len();
        if n == 0 {
            return Ok(());
        }
        if let Some(b) = self.busy() {
            return Err(b);
        }
        // Reserve room first so that concurrent senders cannot overshoot the bound.
        let before = self.queued.fetch_add(n, Ordering::AcqRel);
        if before > 0 && before + n > self.max_queued {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            return Err(Busy::Queue);
        }
        let keys = events.iter().map(crate::correlate::keys).collect();
        match self.tx.try_send(Msg::Events(events, keys)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(n, Ordering::AcqRel);
                Err(Busy::Queue)
            }
        }
    }

    /// Queues events, waiting while the queue is full (followed files: the
    /// file keeps the lines until there is room).
    pub fn send(&self, events: Vec<Event>, keys: Vec<Vec<String>>) {
        let n = events.len();
        if n == 0 {
            return;
        }
        let waiting = std::time::Instant::now();
        while self.memory.level() >= Level::Soft && waiting.elapsed() < MEMORY_WAIT {
            std::thread::sleep(Duration::from_millis(5));
        }
        while self.queued.load(Ordering::Acquire) > 0
            && self.queued.load(Ordering::Acquire) + n > self.max_queued
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.queued.fetch_add(n, Ordering::AcqRel);
        if self.tx.send(Msg::Events(events, keys)).is_err() {
            self.queued.fetch_sub(n, Ordering::AcqRel);
        }
    }

    /// Tells the pipeline that no source will send again.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Msg::Shutdown);
    }
}

/// Bearer-token check shared by both OTLP endpoints; compares in constant time.
pub fn authorized(expected: Option<&str>, header: Option<&[u8]>) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    let Some(given) = header.and_then(|h| h.strip_prefix(b"Bearer ".as_slice())) else {
        return false;
    };
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_refuses_whole_messages_and_counts_nothing_twice() {
        let (intake, outlet) = channel(3, Arc::new(Limiter::new(None)));
        let ev = || Event {
            format: "t".into(),
            ..Default::default()
        };
        assert!(intake.offer(vec![ev(), ev()]).is_ok());
        assert_eq!(
            intake.offer(vec![ev(), ev()]),
            Err(Busy::Queue),
            "2 + 2 > 3"
        );
        assert!(intake.offer(vec![ev()]).is_ok());
        assert_eq!(outlet.queued.load(Ordering::Relaxed), 3);
        // A message larger than the whole bound still goes through an empty queue.
        let (big, _o) = channel(1, Arc::new(Limiter::new(None)));
        assert!(big.offer(vec![ev(), ev()]).is_ok());
    }

    #[test]
    fn over_the_soft_mark_receivers_are_refused_and_nothing_is_queued() {
        // A limit of one byte: every sample is over it.
        let memory = Arc::new(Limiter::new(Some(1)));
        memory.sample();
        let (intake, outlet) = channel(100, memory);
        let ev = Event {
            format: "t".into(),
            ..Default::default()
        };
        assert_eq!(intake.busy(), Some(Busy::Memory));
        assert_eq!(intake.offer(vec![ev]), Err(Busy::Memory));
        assert_eq!(outlet.queued.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_token_must_match_exactly() {
        assert!(authorized(None, None));
        assert!(authorized(Some("s3"), Some(b"Bearer s3")));
        assert!(!authorized(Some("s3"), Some(b"Bearer s4")));
        assert!(!authorized(Some("s3"), Some(b"bearer s3")));
        assert!(!authorized(Some("s3"), Some(b"Bearer s33")));
        assert!(!authorized(Some("s3"), None));
    }
}
