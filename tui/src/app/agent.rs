//! What the cockpit holds of the research agent: the approvals waiting for a person and the
//! wild-mode loops. Both come from a list at every (re)sync (`approvals.list`, `wild.status`)
//! and are kept current by `approval` and `wild` events; the daemon owns them, this is only
//! what this client shows.
//!
//! An approval is answered by whichever client answers first: the box shows until the
//! settled approval arrives (as an event, or as the reply to this client's own answer), so
//! every cockpit drops it at the same moment whoever answered.

use reagent::agent::{Approval, ApprovalState, WildInfo, WildState};

use unicode_width::UnicodeWidthChar;

use crate::sanitize;

/// The agent's state as this cockpit sees it.
#[derive(Debug, Default)]
pub struct Agent {
    /// Approvals waiting for an answer, oldest first: the box shows the first.
    pub approvals: Vec<Approval>,
    /// The approval this client has answered and whose settled form has not come back yet,
    /// so a second key press does not answer it twice.
    pub answering: Option<String>,
    /// Lines the shown approval's action is scrolled down (a long diff is taller than the
    /// box).
    pub scroll: u16,
    /// Every wild-mode loop the daemon told of, oldest first; one per session (a loop
    /// started again in a session replaces the one that ended there).
    pub wild: Vec<WildInfo>,
}

impl Agent {
    /// The approval the box shows: the oldest waiting.
    pub fn pending(&self) -> Option<&Approval> {
        self.approvals.first()
    }

    /// Takes an approval as it is now (an event, or the reply to an answer): a waiting one
    /// is kept in order of asking, a settled one drops out.
    pub fn approval(&mut self, approval: Approval) {
        let shown = self.pending().map(|a| a.id.clone());
        self.approvals.retain(|a| a.id != approval.id);
        if approval.state == ApprovalState::Pending {
            self.approvals.push(approval);
            self.approvals.sort_by_key(|a| a.created_at);
        } else if self.answering.as_deref() == Some(approval.id.as_str()) {
            self.answering = None;
        }
        self.rescroll(shown);
    }

    /// Replaces the waiting approvals with an `approvals.list` reply (what is waiting now;
    /// the events after it are newer and apply on top).
    ///
    /// An answer still marked as on its way is forgotten: a list comes at every (re)sync, and
    /// an answer sent while the link was down never reached the daemon, so the box must take
    /// keys again (one that did arrive settles it, and a second answer is only refused).
    pub fn listed(&mut self, mut approvals: Vec<Approval>) {
        let shown = self.pending().map(|a| a.id.clone());
        approvals.retain(|a| a.state == ApprovalState::Pending);
        approvals.sort_by_key(|a| a.created_at);
        self.approvals = approvals;
        self.answering = None;
        self.rescroll(shown);
    }

    /// A new approval in the box starts at the top of its action.
    fn rescroll(&mut self, shown: Option<String>) {
        if self.pending().map(|a| &a.id) != shown.as_ref() {
            self.scroll = 0;
        }
    }

    /// The calls of `session` waiting for an answer, by the provider's call id: the chat
    /// shows "waiting for approval" under them.
    pub fn awaiting(&self, session: &str) -> Vec<String> {
        let waiting = self.approvals.iter().filter(|a| a.session == session);
        waiting.map(|a| a.call_id.clone()).collect()
    }

    /// Takes a loop as it is now; returns what to tell the user when it just ended (its
    /// status line, with why) and whether that reads as a failure.
    pub fn wild(&mut self, wild: WildInfo) -> Option<(String, bool)> {
        let ended_before = (self.wild.iter().find(|w| w.session == wild.session))
            .is_some_and(|w| w.state == WildState::Ended && w.started_at == wild.started_at);
        let notice = (wild.state == WildState::Ended && !ended_before).then(|| {
            let mut text = sanitize::line(&wild.status_line()).into_owned();
            if let Some(summary) = wild.summary.as_deref() {
                text.push_str(&format!(" — {}", sanitize::line(summary)));
            }
            let failed = wild.end.as_deref().is_some_and(|end| end != "finished");
            (text, failed)
        });
        match self.wild.iter_mut().find(|w| w.session == wild.session) {
            Some(existing) => *existing = wild,
            None => self.wild.push(wild),
        }
        notice
    }

    /// Replaces the loops with a `wild.status` reply.
    pub fn wild_listed(&mut self, loops: Vec<WildInfo>) {
        self.wild.clear();
        for wild in loops {
            // Oldest first: a later loop of the same session is the one that counts.
            let _ = self.wild(wild);
        }
    }

    /// The loops still going, oldest first: what the wild bar shows.
    pub fn live(&self) -> impl Iterator<Item = &WildInfo> {
        self.wild.iter().filter(|w| w.state != WildState::Ended)
    }

    /// The loop going on in `session`, if any.
    pub fn live_in(&self, session: &str) -> Option<&WildInfo> {
        self.live().find(|w| w.session == session)
    }
}

/// Rows `action` takes in a box `width` cells wide, as it is drawn: made safe, tabs as four
/// spaces, each line cut into rows of the width (what `ui::wrap::cut` does).
pub fn action_rows(action: &str, width: usize) -> usize {
    let width = width.max(1);
    let text = sanitize::text(action);
    text.lines()
        .map(|line| {
            let (mut rows, mut used) = (1, 0);
            for c in line.replace('\t', "    ").chars() {
                let w = UnicodeWidthChar::width(c).unwrap_or(0);
                if used + w > width && used > 0 {
                    rows += 1;
                    used = 0;
                }
                used += w;
            }
            rows
        })
        .sum::<usize>()
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fixtures::{approval, wild};

    #[test]
    fn settled_approvals_drop_out_and_the_oldest_shows() {
        let mut agent = Agent::default();
        agent.approval(approval("b", "c2", 20, ApprovalState::Pending));
        agent.approval(approval("a", "c1", 10, ApprovalState::Pending));
        assert_eq!(agent.pending().map(|a| a.id.as_str()), Some("a"));
        assert_eq!(agent.awaiting("s"), ["c1", "c2"]);
        agent.scroll = 3;
        agent.answering = Some("a".into());
        agent.approval(approval("a", "c1", 10, ApprovalState::Denied));
        assert_eq!(agent.pending().map(|a| a.id.as_str()), Some("b"));
        assert_eq!(agent.answering, None, "its answer came back");
        assert_eq!(agent.scroll, 0, "the next one starts at its top");
        agent.listed(vec![approval("c", "c3", 5, ApprovalState::Pending)]);
        assert_eq!(agent.awaiting("s"), ["c3"], "a list replaces what was held");
    }

    #[test]
    fn a_loop_that_ends_is_told_once() {
        let mut agent = Agent::default();
        assert_eq!(agent.wild(wild("s", WildState::Acting, None)), None);
        assert_eq!(agent.live().count(), 1);
        let (text, failed) = agent
            .wild(wild("s", WildState::Ended, Some("max_steps")))
            .expect("a notice");
        assert!(text.contains("ended: max_steps"), "{text}");
        assert!(failed, "a budget that ran out is worth a look");
        assert_eq!(
            agent.wild(wild("s", WildState::Ended, Some("max_steps"))),
            None
        );
        assert_eq!(agent.live().count(), 0);
        agent.wild_listed(vec![wild("t", WildState::Waiting, None)]);
        assert_eq!(
            agent.live_in("t").map(|w| w.goal.as_str()),
            Some("lower the loss")
        );
        assert!(agent.live_in("s").is_none());
    }

    #[test]
    fn an_action_takes_a_row_per_cut_line() {
        assert_eq!(action_rows("$ ls\n  in runs/lr", 40), 2);
        assert_eq!(action_rows(&"x".repeat(90), 40), 3);
        assert_eq!(action_rows("", 40), 1);
        assert_eq!(action_rows("a\tb", 4), 2, "a tab is four columns");
    }
}
