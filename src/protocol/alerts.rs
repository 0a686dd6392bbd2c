//! Params and replies of the alert methods (`alerts.list`, `alert.respond`,
//! `alerts.ignore_like`).

use serde::{Deserialize, Serialize};

use crate::alert::{AlertInfo, AlertStatus, Choice};

/// `alerts.list` params.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListAlerts {
    /// Only alerts in this status.
    #[serde(default)]
    pub status: Option<AlertStatus>,
    /// Only this run's (id, name or unique id prefix).
    #[serde(default)]
    pub run: Option<String>,
}

/// `alert.respond` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RespondAlert {
    /// The alert's id or unique id prefix.
    pub id: String,
    /// The answer; must be one of the alert's choices.
    pub choice: Choice,
}

/// `alert.respond` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertResponse {
    /// The alert, answered.
    pub alert: AlertInfo,
    /// The chat session opened by `chat`.
    pub session: Option<String>,
}

/// `alerts.ignore_like` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoreAlertsLike {
    /// The id or unique id prefix of the alert whose like are ignored (it may be answered
    /// already; its open likes are still ignored).
    pub id: String,
}

/// `alerts.ignore_like` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IgnoredAlerts {
    /// Where its likes were looked for: `sweep NAME` or `every run`.
    pub scope: String,
    /// The alerts ignored now, answered; empty when none was open.
    pub alerts: Vec<AlertInfo>,
}

impl IgnoredAlerts {
    /// What was done, in words the CLI and the cockpit both show:
    /// `ignored 3 alerts (threshold on loss) across sweep lr`.
    pub fn summary(&self) -> String {
        let Some(first) = self.alerts.first() else {
            return format!("no open alert like it across {}", self.scope);
        };
        let kind = match &first.subject {
            Some(subject) => format!("{} on {subject}", first.rule),
            None => first.rule.to_string(),
        };
        let count = self.alerts.len();
        let plural = if count == 1 { "" } else { "s" };
        format!(
            "ignored {count} alert{plural} ({kind}) across {}",
            self.scope
        )
    }
}
