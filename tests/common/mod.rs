#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tracejoin::analysis::{self, Analysis, Options};
use tracejoin::parse::Registry;
use tracejoin::rules::Engine;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn analyze(paths: &[&Path]) -> Analysis {
    let registry = Registry::load(None).expect("built-in formats load");
    let engine = Engine::load(None).expect("built-in rules load");
    let opts = Options {
        paths: paths.iter().map(|p| p.to_path_buf()).collect(),
        ..Default::default()
    };
    analysis::run(&opts, &registry, &engine).expect("analysis runs")
}

pub fn tracejoin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tracejoin"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A copy of sample-logs in a temporary folder, without the files listed in
/// `except` (paths relative to sample-logs), for tests that rewrite one input.
pub fn sample_logs_copy(except: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "gateway/access.log",
        "orders/orders.log",
        "payments/payments.log",
        "otel/logs.jsonl",
        "otel/traces.jsonl",
    ] {
        let to = dir.path().join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        if !except.contains(&f) {
            std::fs::copy(repo().join("sample-logs").join(f), to).unwrap();
        }
    }
    dir
}

/// The Python that runs the real-stack scripts, or `None` (the test then
/// skips) when it is not set up. `scripts/test` sets it up and requires it.
pub fn realstack_python() -> Option<String> {
    match std::env::var("TRACEJOIN_REALSTACK_PYTHON") {
        Ok(p) => Some(p),
        Err(_) => {
            assert!(
                std::env::var_os("TRACEJOIN_REQUIRE_REALSTACK").is_none(),
                "TRACEJOIN_REALSTACK_PYTHON is not set but the real stack is required"
            );
            eprintln!("skipped: run scripts/test (it installs the gateways and the OTel SDK) to run the real stack");
            None
        }
    }
}
