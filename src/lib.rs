//! The `reagent` library, shared by the daemon (`reagentd`) and every client (`reagent`).
//!
//! It holds what both sides must agree on: the wire protocol ([`protocol`]), the domain types
//! it carries ([`run`]), where state lives ([`paths`]), the config file ([`config`]), the line
//! framing ([`connection`]) and the client side of a connection ([`client`]).

pub mod agent;
pub mod alert;
pub mod chat;
pub mod client;
pub mod config;
pub mod connection;
pub mod error;
pub mod gateway;
pub mod gpu;
pub mod lookup;
pub mod metrics;
pub mod model;
pub mod names;
pub mod number;
pub mod paths;
pub mod protocol;
pub mod run;
pub mod shell;
pub mod slurm;
pub mod sweep;
pub mod time;
pub mod token;
pub mod transport;

pub use error::{Error, Result};
