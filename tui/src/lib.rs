//! The `reagent` client as a library: the CLI subcommands ([`commands`]) and the cockpit
//! ([`app`] for state and the event loop, [`ui`] for rendering). The binary is a thin `main`;
//! benchmarks and tests reach the same code through here.

pub mod app;
pub mod cli;
pub mod commands;
pub mod ui;
