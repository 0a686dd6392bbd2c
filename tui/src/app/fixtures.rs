//! What the cockpit's tests build their messages from, shared so each test module does not
//! keep its own copy.

use reagent::alert::{AlertInfo, AlertRule, AlertStatus, Choice, Severity};
use reagent::chat::PartKind;
use reagent::protocol::EventKind;

/// A NaN alert on run `aaaa`.
pub fn alert(id: &str, status: AlertStatus) -> AlertInfo {
    AlertInfo {
        id: id.into(),
        run: "aaaa".into(),
        rule: AlertRule::Nan,
        subject: None,
        severity: Severity::Critical,
        message: "loss is NaN".into(),
        step: None,
        choices: Choice::ALL.to_vec(),
        status,
        response: None,
        session: None,
        created_at: 0,
        answered_at: None,
    }
}

/// Text streamed into message `m` of session `s` at `offset`.
pub fn delta(offset: usize, text: &str) -> EventKind {
    EventKind::Delta {
        session: "s".into(),
        message: "m".into(),
        part: 0,
        kind: PartKind::Text,
        offset,
        text: text.into(),
    }
}
