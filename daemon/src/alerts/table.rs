//! The alerts service's table: every alert, oldest first, in [`State::alerts`].

use reagent::alert::AlertInfo;
use reagent::protocol::{EventKind, RpcError};

use crate::daemon::State;

impl State {
    /// Every alert, oldest first.
    pub fn alerts(&self) -> &[AlertInfo] {
        self.alerts.all()
    }

    /// Finds an alert by id or unique id prefix.
    pub fn resolve_alert(&self, query: &str) -> Result<&AlertInfo, RpcError> {
        self.alerts.resolve(query)
    }

    /// Commits a new or answered alert, then broadcasts it.
    pub fn save_alert(&mut self, alert: AlertInfo) -> Result<AlertInfo, RpcError> {
        self.bus.emit(EventKind::Alert {
            alert: alert.clone(),
        })?;
        self.alerts.upsert(alert.clone());
        Ok(alert)
    }
}
