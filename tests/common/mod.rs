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
