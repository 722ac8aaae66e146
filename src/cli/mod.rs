//! The command line: clap arguments → the pipeline, results → stdout,
//! diagnostics → stderr, and the exit code (0 ok, 1 input errors reported,
//! 2 usage or fatal error).

mod args;
mod commands;

pub use args::Cli;

use clap::Parser;

pub const EXIT_OK: i32 = 0;
pub const EXIT_INPUT_ERRORS: i32 = 1;
pub const EXIT_FATAL: i32 = 2;

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_FATAL } else { EXIT_OK };
            let _ = e.print();
            return code;
        }
    };
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tracejoin: error: {e:#}");
            EXIT_FATAL
        }
    }
}
