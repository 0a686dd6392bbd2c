//! The `reagent` client as a library: the CLI subcommands ([`commands`]) and the cockpit
//! ([`app`] for state and the event loop, [`ui`] for rendering). The binary is a thin `main`;
//! benchmarks and tests reach the same code through here. [`sanitize`] makes untrusted text
//! safe for the terminal, [`plain`] renders a log as a terminal showed it, and [`exit`] holds
//! the CLI's exit codes.

pub mod app;
pub mod cli;
pub mod cockpit;
pub mod commands;
pub mod exit;
pub mod plain;
pub mod sanitize;
pub mod ui;
