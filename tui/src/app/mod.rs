//! The cockpit's state and how it changes: keys and daemon messages go in (the `update` and
//! `on_message` functions), effects for the daemon link come out. Nothing here draws: the
//! `ui` module renders an [`App`], and `crate::cockpit` runs the loop that joins them.

pub mod agent;
pub mod agent_keys;
pub mod chat;
pub mod chat_keys;
pub mod clipboard;
pub mod conversation;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod gateway;
pub mod geometry;
pub mod keys;
pub mod link;
pub mod models;
pub mod models_keys;
pub mod on_message;
pub mod palette;
pub mod request;
pub mod side;
pub mod state;
pub mod update;
pub mod watch;
pub mod watch_keys;

pub use state::App;
