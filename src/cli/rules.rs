//! `tracejoin rules list|check`: the loaded rules in the order they are
//! tried, and every rule's embedded examples labelled by the whole pack.

use super::{EXIT_INPUT_ERRORS, EXIT_OK};
use crate::rules::{check_examples, Engine};
use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum Action {
    /// The loaded rules in the order they are tried.
    List {
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
    },
    /// Compile every rule and run its embedded examples.
    Check {
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
    },
}

impl Action {
    pub fn run(self) -> Result<i32> {
        match self {
            Action::List { rules } => {
                let engine = Engine::load(rules.as_deref())?;
                println!("{:<40} {:<10} {:>8}  pack", "rule", "label", "priority");
                for r in &engine.rules {
                    println!(
                        "{:<40} {:<10} {:>8}  {}",
                        r.def.name,
                        r.def.label.as_str(),
                        r.def.priority,
                        r.pack
                    );
                }
                Ok(EXIT_OK)
            }
            Action::Check { rules } => {
                let engine = Engine::load(rules.as_deref())?;
                let (n, failures) = check_examples(&engine);
                for f in &failures {
                    eprintln!("rule {} example {}: {}", f.rule, f.example, f.problem);
                }
                println!(
                    "{} rules, {} examples: {} passed, {} failed",
                    engine.rules.len(),
                    n,
                    n - failures.iter().filter(|f| f.example > 0).count(),
                    failures.len()
                );
                Ok(if failures.is_empty() {
                    EXIT_OK
                } else {
                    EXIT_INPUT_ERRORS
                })
            }
        }
    }
}
