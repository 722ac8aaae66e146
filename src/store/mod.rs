//! The Parquet store (`analyze --out DIR`): tables `requests` and `events`,
//! Hive-partitioned by hour (`date=YYYY-MM-DD/hour=HH`) so Spark, Trino,
//! DuckDB or ClickHouse read them as they are, an id index for `timeline`, and
//! `manifest.json` saying which inputs, rule pack and tool version made each run.
//!
//! ```text
//! DIR/manifest.json
//! DIR/requests/date=2026-11-25/hour=21/part-<run>-0001.parquet
//! DIR/events/date=2026-11-25/hour=21/part-<run>-0001.parquet   (same rows order as requests)
//! DIR/index/ids-<run>-<partition>-0001.parquet                 (id → file and row; sorted by id)
//! DIR/superseded/part-<run>-0001.parquet                       (request keys a later run replaced)
//! ```

pub mod read;
pub mod reconcile;
pub mod schema;
pub mod table;
pub mod write;

pub use read::Store;
pub use write::StoreWriter;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What a store holds and how to reproduce it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub tool: String,
    pub runs: Vec<RunEntry>,
}

/// One `analyze --out` (or `serve --out`) run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunEntry {
    /// Derived from the inputs (paths, sizes, modification times), the rule
    /// pack and the tool version: the same run again has the same id.
    pub run: String,
    /// The store schema the run's files were written with (runs recorded
    /// before it was kept are version 1).
    #[serde(default = "schema_v1")]
    pub schema_version: u32,
    pub written_at: String,
    pub tool: String,
    pub inputs: Vec<InputEntry>,
    /// SHA-256 of the rule pack's rules in priority order.
    pub rule_pack_hash: String,
    pub rules: Vec<RuleEntry>,
    pub window_ms: u64,
    pub requests: u64,
    pub failed: u64,
    pub events: u64,
    pub partitions: Vec<String>,
    /// What the run's data cannot tell (lines that did not parse, clock
    /// skew, late events): the postmortem's "what we do not know".
    #[serde(default)]
    pub gaps: Vec<String>,
    /// `analyze --shard-start/--shard-end`: the shard the run covers (UTC,
    /// RFC 3339, end exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<[String; 2]>,
    /// Request rows of this or earlier runs that this run replaces (listed in
    /// `superseded/`): amended re-emissions, partial requests joined by
    /// `reconcile`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub superseded: u64,
    /// `reconcile`: the runs whose partial requests it joined.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reconciles: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl RunEntry {
    /// The run of one time shard: its own run id (so that every shard of a
    /// run writes beside the others in one store) and the shard recorded.
    pub fn into_shard(&mut self, start: i64, end: i64) {
        use sha2::{Digest, Sha256};
        let mut id = Sha256::new();
        id.update(self.run.as_bytes());
        id.update(start.to_le_bytes());
        id.update(end.to_le_bytes());
        self.run = hex(&id.finalize())[..16].to_string();
        let t = |ns: i64| chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339();
        self.shard = Some([t(start), t(end)]);
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InputEntry {
    pub path: String,
    pub bytes: u64,
    pub modified: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RuleEntry {
    pub name: String,
    pub label: String,
    pub priority: i64,
    pub pack: String,
}

impl Manifest {
    pub fn read(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join("manifest.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .with_context(|| format!("{} is not a tracejoin manifest", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Reads, changes and writes the manifest under an exclusive lock on
    /// `DIR/manifest.lock`, so that two writers into one store both land (the
    /// second waits for the first).
    pub fn update(dir: &Path, change: impl FnOnce(&mut Manifest)) -> Result<()> {
        let lock_path = dir.join("manifest.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("cannot lock {}", lock_path.display()))?;
        let mut manifest = Manifest::read(dir)?.unwrap_or_default();
        change(&mut manifest);
        manifest.write(dir)
        // The lock is released when `lock` closes.
    }

    fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join("manifest.json");
        let tmp = dir.join(format!("manifest.json.{}.tmp", std::process::id()));
        std::fs::write(&tmp, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// The manifest entry for a run over `paths` with `engine`'s rules; its id is
/// a hash of everything that determines the output.
pub fn run_entry(
    paths: &[std::path::PathBuf],
    engine: &crate::rules::Engine,
    window_ms: u64,
) -> RunEntry {
    use sha2::{Digest, Sha256};
    let (files, _) = crate::ingest::expand_inputs(paths);
    let inputs: Vec<InputEntry> = files
        .iter()
        .map(|i| {
            let meta = std::fs::metadata(&*i.name).ok();
            InputEntry {
                path: std::fs::canonicalize(&*i.name)
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| i.name.to_string()),
                bytes: meta.as_ref().map_or(0, |m| m.len()),
                modified: meta
                    .and_then(|m| m.modified().ok())
                    .map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339()),
            }
        })
        .collect();
    let rules: Vec<RuleEntry> = engine
        .rules
        .iter()
        .map(|r| RuleEntry {
            name: r.def.name.clone(),
            label: r.def.label.to_string(),
            priority: r.def.priority as i64,
            pack: r.pack.clone(),
        })
        .collect();
    let mut pack = Sha256::new();
    for r in &engine.rules {
        pack.update(format!("{:?}\n", r.def).as_bytes());
    }
    let rule_pack_hash = hex(&pack.finalize());
    let tool = format!("tracejoin {}", env!("CARGO_PKG_VERSION"));
    let mut id = Sha256::new();
    for i in &inputs {
        id.update(format!("{}\0{}\0{:?}\n", i.path, i.bytes, i.modified).as_bytes());
    }
    id.update(rule_pack_hash.as_bytes());
    id.update(tool.as_bytes());
    id.update(window_ms.to_le_bytes());
    RunEntry {
        run: hex(&id.finalize())[..16].to_string(),
        schema_version: schema::SCHEMA_VERSION,
        written_at: chrono::Utc::now().to_rfc3339(),
        tool,
        inputs,
        rule_pack_hash,
        rules,
        window_ms,
        ..Default::default()
    }
}

/// A live run's id: `live` and twelve hex digits of a hash of the start time
/// and the process (its request keys start with the id's first twelve
/// characters, so instances started together still write distinct keys).
pub fn live_run_id(now_ns: i64, pid: u32) -> String {
    use sha2::{Digest, Sha256};
    let mut id = Sha256::new();
    id.update(now_ns.to_le_bytes());
    id.update(pid.to_le_bytes());
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        id.update(host.trim().as_bytes());
    }
    format!("live{}", &hex(&id.finalize())[..12])
}

/// A request key is `<prefix>-<n>`: the prefix is the first twelve
/// characters of its run's id, so a key names its run.
pub fn key_prefix(run_or_key: &str) -> &str {
    &run_or_key[..run_or_key.len().min(12)]
}

fn schema_v1() -> u32 {
    1
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
