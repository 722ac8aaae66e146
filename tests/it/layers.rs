//! Imports point down the pipeline: a module may use the modules below it,
//! never one above (no cycles, no reaching back). Read from the `crate::`
//! paths in every source file, so a newcomer's `use` that breaks the order
//! fails here with the file and the line.

use crate::common::repo;
use std::path::Path;

/// The top-level modules of `src/`, lowest first.
const LAYERS: &[&str] = &[
    "event",
    "ingest",
    "parse",
    "correlate",
    "rules",
    "labelled",
    "episodes",
    "analysis",
    "store",
    "query",
    "report",
    "sink",
    "serve",
    "cli",
];

fn rank(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| *l == module)
        .unwrap_or_else(|| panic!("src/{module} is not in LAYERS: place it in the pipeline"))
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a source file belongs to (`src/parse/json.rs` → `parse`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// Every `crate::NAME` a line refers to, braces included (`crate::{a, b::c}`).
fn crate_refs(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(inner) = rest.strip_prefix('{') {
            let end = inner.find('}').unwrap_or(inner.len());
            for part in inner[..end].split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

#[test]
fn imports_point_down_the_pipeline() {
    let src = repo().join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        let own = rank(&module);
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for target in crate_refs(code) {
                if target == module || target == "self" {
                    continue;
                }
                if rank(&target) > own {
                    wrong.push(format!(
                        "{}:{}: {module} uses {target}, which is above it in the pipeline",
                        file.strip_prefix(repo()).unwrap().display(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_layer_check_sees_a_reference_upwards() {
    assert_eq!(
        crate_refs("use crate::{event::Event, cli::EXIT_OK};"),
        ["event", "cli"]
    );
    assert_eq!(crate_refs("    Ok(crate::cli::EXIT_OK)"), ["cli"]);
    assert!(rank("cli") > rank("serve") && rank("event") < rank("parse"));
}
