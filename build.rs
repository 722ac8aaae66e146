//! Embeds every `parsers/*.toml` and `rules/*.toml` into the binary, so adding a
//! built-in format or rule pack is adding a file.
use std::fmt::Write;
use std::path::Path;

fn embed(dir: &str, out: &mut String, name: &str) {
    println!("cargo:rerun-if-changed={dir}");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    writeln!(out, "pub const {name}: &[(&str, &str)] = &[").unwrap();
    for p in files {
        println!("cargo:rerun-if-changed={}", p.display());
        let abs = std::fs::canonicalize(&p).unwrap();
        let file = p.file_name().unwrap().to_string_lossy();
        writeln!(
            out,
            "    ({file:?}, include_str!({:?})),",
            abs.display().to_string()
        )
        .unwrap();
    }
    writeln!(out, "];").unwrap();
}

fn main() {
    let out_dir = std::env::var("OUT_DIR").unwrap();
    for (dir, name, file) in [
        ("parsers", "PARSERS", "embedded_parsers.rs"),
        ("rules", "RULES", "embedded_rules.rs"),
    ] {
        let mut out = String::new();
        embed(dir, &mut out, name);
        std::fs::write(Path::new(&out_dir).join(file), out).unwrap();
    }
}
