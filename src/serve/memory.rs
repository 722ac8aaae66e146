//! serve's memory limiter, in the manner of the OpenTelemetry Collector's
//! `memory_limiter` processor: a monitor samples the process's resident set
//! (what the kernel's OOM killer sees); above the soft mark (the limit less a
//! fifth, the Collector's default spike allowance) receivers refuse new data
//! with their retryable status and followed files wait; above the hard mark
//! the pipeline emits its oldest open requests early (flag `evicted`), forgets
//! the emitted requests it kept for amendment, writes out the store's buffered
//! rows and hands freed memory back to the system. Nothing already accepted is
//! dropped: shedding emits, it never discards.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the resident set is sampled.
const SAMPLE: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Normal = 0,
    /// Over the soft mark: refuse (retryable) or wait.
    Soft = 1,
    /// Over the limit: shed.
    Hard = 2,
}

#[derive(Debug)]
pub struct Limiter {
    /// Bytes; `u64::MAX`: no limit (`--memory-limit off`).
    pub limit: u64,
    pub soft: u64,
    level: AtomicU8,
    rss: AtomicU64,
    peak: AtomicU64,
    /// Samples taken over the soft mark and over the limit.
    pub soft_samples: AtomicU64,
    pub hard_samples: AtomicU64,
    /// Times the pipeline shed at the hard mark.
    pub sheds: AtomicU64,
}

impl Limiter {
    pub fn new(limit: Option<u64>) -> Limiter {
        let limit = limit.unwrap_or(u64::MAX);
        Limiter {
            limit,
            soft: if limit == u64::MAX {
                u64::MAX
            } else {
                limit - limit / 5
            },
            level: AtomicU8::new(Level::Normal as u8),
            rss: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            soft_samples: AtomicU64::new(0),
            hard_samples: AtomicU64::new(0),
            sheds: AtomicU64::new(0),
        }
    }

    pub fn level(&self) -> Level {
        match self.level.load(Ordering::Acquire) {
            0 => Level::Normal,
            1 => Level::Soft,
            _ => Level::Hard,
        }
    }

    /// The resident set at the last sample, and the highest sampled.
    pub fn rss(&self) -> (u64, u64) {
        (
            self.rss.load(Ordering::Relaxed),
            self.peak.load(Ordering::Relaxed),
        )
    }

    /// `memory 312/512 MiB (peak 400), shed 2×` for the stats line.
    pub fn describe(&self) -> String {
        let mib = |b: u64| b >> 20;
        let (rss, peak) = self.rss();
        let limit = if self.limit == u64::MAX {
            "no limit".to_string()
        } else {
            format!("{} MiB", mib(self.limit))
        };
        format!(
            "memory {} MiB of {limit} (peak {}), shed {}×",
            mib(rss),
            mib(peak),
            self.sheds.load(Ordering::Relaxed)
        )
    }

    /// Takes one sample and sets the level from it.
    pub fn sample(&self) {
        let Some(rss) = resident_bytes() else {
            return;
        };
        self.observe(rss);
    }

    fn observe(&self, rss: u64) {
        self.rss.store(rss, Ordering::Relaxed);
        self.peak.fetch_max(rss, Ordering::Relaxed);
        let level = if rss >= self.limit {
            self.hard_samples.fetch_add(1, Ordering::Relaxed);
            Level::Hard
        } else if rss >= self.soft {
            self.soft_samples.fetch_add(1, Ordering::Relaxed);
            Level::Soft
        } else {
            Level::Normal
        };
        self.level.store(level as u8, Ordering::Release);
    }

    /// Samples every 50 ms on a thread of its own until `stop`.
    pub fn monitor(self: &Arc<Self>, stop: Arc<AtomicBool>) -> std::io::Result<()> {
        let me = self.clone();
        std::thread::Builder::new()
            .name("tracejoin-memory".into())
            .spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    me.sample();
                    std::thread::sleep(SAMPLE);
                }
            })
            .map(|_| ())
    }
}

/// Bumped to ask every thread to hand its freed memory back.
static COLLECT: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COLLECTED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Hands memory freed by shedding back to the system now, so that the next
/// sample sees it gone. mimalloc returns a page only once the thread that
/// allocated it collects: events are decoded on the receivers' threads and
/// labelled on rayon's, but freed on the pipeline's. So this thread and
/// rayon's collect now, and the receivers' when they next park
/// ([`collect_if_asked`], the runtime's park hook), which `wake` makes soon.
pub fn release_freed(wake: &dyn Fn()) {
    COLLECT.fetch_add(1, Ordering::AcqRel);
    collect();
    rayon::broadcast(|_| collect());
    wake();
}

/// For the async runtime's `on_thread_park`: collects once per request.
pub fn collect_if_asked() {
    let asked = COLLECT.load(Ordering::Acquire);
    if COLLECTED.with(|c| c.replace(asked)) != asked {
        collect();
    }
}

fn collect() {
    // SAFETY: mi_collect only walks this thread's heap and the allocator's
    // own free lists.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// Turns transparent huge pages off for this process. mimalloc asks for them
/// (`madvise(MADV_HUGEPAGE)`), and the kernel's khugepaged then refills the
/// 4 KiB pages mimalloc purged with whole 2 MiB pages, every scan (10 s):
/// an idle serve grew by ~14 MiB a scan until it refused all senders.
pub fn no_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

/// The resident set of this process (Linux: `/proc/self/statm`).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as u64
    } else {
        4096
    }
}

/// The memory this process may use: the machine's, or its cgroup's limit
/// when that is lower (a container).
pub fn available_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let total = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())?
        * 1024;
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok()?.trim().parse::<u64>().ok());
    Some(cgroup.map_or(total, |c| c.min(total)))
}

/// `--memory-limit`'s default: half of what the machine (or container) has,
/// leaving the rest to the system and the services being debugged beside it.
pub fn default_limit() -> Option<u64> {
    available_bytes().map(|b| b / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_soft_and_hard_marks() {
        let l = Limiter::new(Some(1000));
        assert_eq!(l.soft, 800);
        l.observe(799);
        assert_eq!(l.level(), Level::Normal);
        l.observe(800);
        assert_eq!(l.level(), Level::Soft);
        l.observe(1000);
        assert_eq!(l.level(), Level::Hard);
        l.observe(10);
        assert_eq!(l.level(), Level::Normal);
        assert_eq!(l.rss(), (10, 1000));
        let off = Limiter::new(None);
        off.observe(u64::MAX - 1);
        assert_eq!(off.level(), Level::Normal);
    }

    #[test]
    fn this_process_has_a_resident_set_and_the_machine_has_memory() {
        let rss = resident_bytes().expect("/proc/self/statm");
        assert!(rss > 1 << 20, "{rss}");
        assert!(available_bytes().expect("/proc/meminfo") > rss);
    }
}
