//! The agent's state and requests: lists at sync, events and replies, palette commands.

use reagent::agent::{ApprovalState, FileChange, WildState};
use reagent::config::PrefixKey;
use reagent::protocol::{
    AnswerApproval, Event, EventKind, ListApprovals, ListSessions, Notification, ResizeRun,
    SetSessionAgent, StartWild, StopWild,
};
use reagent::run::RunInfo;

use crate::app::App;
use crate::app::conversation::Plain;
use crate::app::fixtures::{approval, wild};
use crate::app::link::{Incoming, Replied};
use crate::app::on_message::on_message;
use crate::app::palette::execute;
use crate::app::state::{Focus, Link, Mode};
use crate::app::update::{Effect, fit_typed_run, history};

fn run(id: &str) -> RunInfo {
    crate::app::fixtures::run(id, "python")
}

/// A connected cockpit with chat session `s` open.
fn cockpit() -> App {
    let mut app = App::new("local", PrefixKey('b'), (160, 40), 0, Box::new(Plain));
    app.link = Link::Connected { clients: 1 };
    app.chat.open("s");
    assert!(app.chat.history("s", Vec::new()));
    app
}

fn event(app: &mut App, kind: EventKind) -> Vec<Effect> {
    let seq = app.seq + 1;
    let note = Notification::Event(Event { seq, ts: 0, kind });
    on_message(app, Incoming::Note(note))
}

fn reply(app: &mut App, replied: Replied) -> Vec<Effect> {
    on_message(app, Incoming::Replied(replied))
}

#[test]
fn approvals_come_from_events_and_leave_when_settled() {
    let mut app = cockpit();
    let pending = approval("ap1", "c1", 10, ApprovalState::Pending);
    assert!(event(&mut app, EventKind::Approval { approval: pending }).is_empty());
    assert_eq!(app.agent.pending().map(|a| a.id.as_str()), Some("ap1"));
    assert_eq!(app.agent.awaiting("s"), ["c1"]);
    let settled = approval("ap1", "c1", 10, ApprovalState::Expired);
    assert!(event(&mut app, EventKind::Approval { approval: settled }).is_empty());
    assert!(app.agent.pending().is_none());

    // A list (at every sync) replaces what was held.
    reply(
        &mut app,
        Replied::Approvals(vec![
            approval("ap3", "c3", 30, ApprovalState::Pending),
            approval("ap2", "c2", 20, ApprovalState::Pending),
        ]),
    );
    assert_eq!(app.agent.pending().map(|a| a.id.as_str()), Some("ap2"));
    assert_eq!(app.agent.approvals.len(), 2);
}

#[test]
fn the_answer_comes_back_settled_or_frees_the_box_when_it_fails() {
    let mut app = cockpit();
    app.agent
        .approval(approval("ap1", "c1", 10, ApprovalState::Pending));
    let effects = execute(&mut app, "deny the lr is too high");
    let deny = AnswerApproval {
        id: "ap1".into(),
        approve: false,
        always: false,
        reason: Some("the lr is too high".into()),
    };
    assert!(effects == [Effect::ask(deny)], "{effects:?}");
    assert_eq!(app.agent.answering.as_deref(), Some("ap1"));
    assert!(execute(&mut app, "approve").is_empty(), "answered already");

    reply(
        &mut app,
        Replied::ApprovalFailed("ap1".into(), "ap1 was approved already".into()),
    );
    assert_eq!(app.agent.answering, None, "the box takes keys again");
    assert!(app.flash.as_ref().is_some_and(|f| f.error));

    let effects = execute(&mut app, "approve always");
    assert!(
        effects
            .first()
            .and_then(|e| e.request::<AnswerApproval>())
            .is_some_and(|a| a.approve && a.always),
        "{effects:?}"
    );
    let mut settled = approval("ap1", "c1", 10, ApprovalState::Approved);
    settled.always = true;
    reply(&mut app, Replied::ApprovalAnswered(Box::new(settled)));
    assert!(app.agent.pending().is_none());
    let flash = app.flash.as_ref().map(|f| f.text.as_str());
    assert_eq!(flash, Some("run_start: approved (always in this session)"));
}

#[test]
fn a_written_file_is_a_notice() {
    let mut app = cockpit();
    let change = FileChange {
        session: "s".into(),
        path: "src/\x1b[2Jtrain.py".into(),
        bytes: 1200,
        added: 3,
        removed: 1,
    };
    assert!(event(&mut app, EventKind::File { change }).is_empty());
    let flash = app.flash.as_ref().expect("a notice");
    assert_eq!(flash.text, "wrote src/^[[2Jtrain.py (+3 −1)");
    assert!(!flash.error);
}

#[test]
fn a_loop_ending_says_why_and_the_typed_run_keeps_its_pane_size() {
    let mut app = cockpit();
    let typed = run("aaaa");
    app.runs = vec![typed.clone()];
    app.open_pane(&typed);
    app.focus = Focus::Pane;
    app.mode = Mode::Input;
    let first = fit_typed_run(&mut app).expect("the run takes the pane's size");
    let rows = first
        .request::<ResizeRun>()
        .map(|r| r.rows)
        .expect("a resize");

    let effects = event(
        &mut app,
        EventKind::Wild {
            wild: wild("s", WildState::Acting, None),
        },
    );
    let resized = effects.iter().find_map(|e| e.request::<ResizeRun>());
    assert_eq!(
        resized.map(|r| r.rows),
        Some(rows - 1),
        "the wild bar took a row"
    );
    assert_eq!(app.agent.live().count(), 1);

    let effects = event(
        &mut app,
        EventKind::Wild {
            wild: wild("s", WildState::Ended, Some("finished")),
        },
    );
    let resized = effects.iter().find_map(|e| e.request::<ResizeRun>());
    assert_eq!(resized.map(|r| r.rows), Some(rows), "and gave it back");
    let flash = app.flash.as_ref().expect("the end is told");
    assert!(flash.text.contains("ended: finished"), "{}", flash.text);
    assert!(!flash.error, "finishing is no failure");
}

#[test]
fn palette_commands_turn_tools_on_and_start_and_stop_wild_mode() {
    let mut app = cockpit();
    let effects = execute(&mut app, "agent on");
    let on = SetSessionAgent {
        session: "s".into(),
        enabled: Some(true),
        ..SetSessionAgent::default()
    };
    assert!(effects == [Effect::ask(on)], "{effects:?}");
    assert!(execute(&mut app, "agent maybe").is_empty());
    assert!(app.flash.as_ref().is_some_and(|f| f.error));

    let effects = execute(&mut app, "wild get val loss under 2.1");
    let start = StartWild {
        goal: "get val loss under 2.1".into(),
        session: Some("s".into()),
        ..StartWild::default()
    };
    assert!(effects == [Effect::ask(start)], "{effects:?}");
    let _ = app.agent.wild(wild("s", WildState::Waiting, None));
    let effects = execute(&mut app, "wild stop");
    let stop = StopWild {
        session: Some("s".into()),
    };
    assert!(effects == [Effect::ask(stop)], "{effects:?}");

    // With no session open, the loop gets one of its own, which the cockpit then opens.
    app.chat.open = None;
    let effects = execute(&mut app, "wild lower the loss");
    assert!(
        effects
            .first()
            .and_then(|e| e.request::<StartWild>())
            .is_some_and(|s| s.session.is_none()),
        "{effects:?}"
    );
    assert!(execute(&mut app, "agent off").is_empty(), "no session open");
    let started = wild("n3w5e551", WildState::Acting, None);
    let effects = reply(&mut app, Replied::WildStarted(Box::new(started), true));
    assert_eq!(
        effects,
        [Effect::ask(ListSessions {}), history("n3w5e551".into())]
    );
    assert_eq!(
        app.chat.open.as_ref().map(|o| o.id.as_str()),
        Some("n3w5e551")
    );
}

#[test]
fn a_sync_lists_approvals_and_loops_again() {
    let mut app = cockpit();
    let hello: reagent::protocol::HelloReply = serde_json::from_value(serde_json::json!({
        "protocol": reagent::protocol::PROTOCOL_VERSION,
        "daemon": {"version": "0", "pid": 1, "started_at": 0, "state_dir": "d"},
        "sync": {"type": "events", "events": []}
    }))
    .expect("a hello reply");
    let effects = on_message(&mut app, Incoming::Synced(hello));
    assert!(effects.contains(&Effect::ask(ListApprovals::default())));
    assert!(effects.contains(&Effect::ask(reagent::protocol::WildStatus {})));
}
