//! Sources: turn the paths a user gave into byte lines with exact origins.
//!
//! Knows nothing of formats or events. Files are streamed (never loaded whole),
//! gzip is recognised by its magic bytes rather than the file name, and a line
//! longer than the limit is reported and skipped instead of growing a buffer
//! without bound.

mod input;
mod lines;
pub mod unwrap;

pub use input::{expand_inputs, open_input, Input, InputKind};
pub use lines::{LineReader, ReadLine};
pub use unwrap::Wrapper;

/// Lines longer than this are reported as errors and skipped (1 MiB).
pub const DEFAULT_MAX_LINE: usize = 1 << 20;
