//! The parser engine: format definitions (`parsers/*.toml`) compiled into
//! parsers, auto-detection, and the per-file parse that yields events plus a
//! report of every line that could not be read.
//!
//! Knows no sockets, joins or labels.

pub mod definition;
pub mod fields;
pub mod format_string;
pub mod json;
pub mod logfmt;
pub mod otlp;
mod registry;
pub mod shipped;
mod stream;

pub use registry::{Format, Registry};
pub use stream::{
    detect, detect_wrapped, parse_chunk, Chunk, FileReport, InputStream, LineError, Parsed,
    Wrapping,
};

/// Definitions compiled into the binary: `(file name, TOML text)`.
pub mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_parsers.rs"));
}
