//! Snapshot and key tests of the chat view: markdown answers, scrolling back, search, the
//! model picker, the usage panel and the chat keys' help.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use reagent::chat::{
    MessageInfo, MessageStatus, MessageUsage, Part, PartKind, Role, SessionInfo, UsageReport,
    UsageTotals,
};
use reagent::protocol::{
    EventKind, ListProviders, RenameSession, SendChat, SetSessionModel, UsageQuery,
};

use super::tests::{NOW, app_with_runs, draw};
use crate::app::App;
use crate::app::chat::Anchor;
use crate::app::state::{Focus, Mode, View};
use crate::app::update::{Effect, on_key};

/// The chat session these tests open.
pub(super) const SESSION: &str = "5e551011";

pub(super) fn message(
    id: &str,
    role: Role,
    status: MessageStatus,
    parts: Vec<Part>,
) -> MessageInfo {
    MessageInfo {
        id: id.into(),
        session: SESSION.into(),
        role,
        status,
        parts,
        error: None,
        usage: MessageUsage::default(),
        created_at: NOW,
    }
}

/// The chat view with one session open, holding `messages`.
pub(super) fn chat_app(messages: Vec<MessageInfo>) -> App {
    let mut app = app_with_runs();
    app.view = View::Chat;
    let session = SessionInfo {
        id: SESSION.into(),
        title: Some("nan hunt".into()),
        model: "anthropic/claude".into(),
        system: None,
        cwd: "/work".into(),
        created_at: NOW,
        agent: Default::default(),
    };
    assert!(app.chat.apply(&EventKind::Session { session }));
    app.chat.open(SESSION);
    assert!(app.chat.history(SESSION, messages));
    app.focus = Focus::Pane;
    app
}

fn numbered(count: usize) -> Vec<MessageInfo> {
    (0..count)
        .map(|i| {
            let text = format!("message number {i}");
            message(
                &format!("m{i}"),
                Role::User,
                MessageStatus::Complete,
                vec![Part::text(text)],
            )
        })
        .collect()
}

fn press(app: &mut App, code: KeyCode) -> Vec<Effect> {
    on_key(app, KeyEvent::new(code, KeyModifiers::NONE))
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
}

#[test]
fn a_chat_session_streaming_an_answer() {
    let thinking = Part {
        kind: PartKind::Thinking,
        text: "the loss...".into(),
        name: None,
        call_id: None,
        error: false,
    };
    let mut app = chat_app(vec![
        message(
            "m1",
            Role::User,
            MessageStatus::Complete,
            vec![Part::text("why is my loss NaN at step 2000?")],
        ),
        message(
            "m2",
            Role::Assistant,
            MessageStatus::Streaming,
            vec![thinking, Part::text("Check the learning")],
        ),
    ]);
    app.mode = Mode::Compose;
    app.chat.input = "and the warmup?".into();
    insta::assert_snapshot!(draw(&app));
}

#[test]
fn an_answer_in_markdown_with_a_tool_call_and_usage() {
    let answer = "## Likely causes\n\n1. The **learning rate** is too high\n2. A `log(0)`\n\n\
                  | step | loss |\n|---:|---:|\n| 1999 | 2.31 |\n| 2000 | NaN |\n\n\
                  ```python\nfor p in model.parameters():\n    print(p.grad.norm())\n```\n";
    let tool = Part {
        kind: PartKind::ToolCall,
        text: r#"{"path": "train.log", "lines": 50}"#.into(),
        name: Some("read_log".into()),
        call_id: Some("c1".into()),
        error: false,
    };
    let result = Part {
        kind: PartKind::ToolResult,
        text: "step 2000 loss nan\nstep 1999 loss 2.31\n".into(),
        name: Some("read_log".into()),
        call_id: Some("c1".into()),
        error: false,
    };
    let mut reply = message(
        "m2",
        Role::Assistant,
        MessageStatus::Complete,
        vec![tool, result, Part::text(answer)],
    );
    reply.usage = MessageUsage {
        input: Some(1200),
        output: Some(340),
        cost_usd: Some(0.0123),
        ttft_ms: Some(420),
        tokens_per_s: Some(61.0),
        ..MessageUsage::default()
    };
    let question = message(
        "m1",
        Role::User,
        MessageStatus::Complete,
        vec![Part::text("why NaN?")],
    );
    let mut app = chat_app(vec![question, reply]);
    app.size = (100, 34);
    insta::assert_snapshot!(draw(&app));
}

#[test]
fn scrolling_back_and_searching_a_long_session() {
    let mut app = chat_app(numbered(10_000));
    press(&mut app, KeyCode::PageUp);
    let scrolled = app.chat.open.as_ref().and_then(|o| o.scroll);
    assert!(scrolled.is_some(), "PgUp leaves the end");
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "NUMBER 42");
    press(&mut app, KeyCode::Enter);
    let open = app.chat.open.as_ref().expect("open");
    assert_eq!(
        open.scroll,
        Some(Anchor {
            message: 4299,
            line: 0
        })
    );
    insta::assert_snapshot!(draw(&app));

    press(&mut app, KeyCode::Char('n'));
    let open = app.chat.open.as_ref().expect("open");
    assert_eq!(open.scroll.map(|a| a.message), Some(4298), "n: older");
    press(&mut app, KeyCode::Char('N'));
    let open = app.chat.open.as_ref().expect("open");
    assert_eq!(open.scroll.map(|a| a.message), Some(4299), "N: newer");
    press(&mut app, KeyCode::Esc);
    assert!(app.chat.search.is_none(), "Esc ends the search");
    press(&mut app, KeyCode::Char('G'));
    assert_eq!(
        app.chat.open.as_ref().and_then(|o| o.scroll),
        None,
        "G follows the end"
    );
    press(&mut app, KeyCode::Char('g'));
    let top = app.chat.open.as_ref().and_then(|o| o.scroll);
    assert_eq!(top, Some(Anchor::default()));
    assert!(draw(&app).contains("message number 0 "));
}

#[test]
fn sending_a_message_returns_to_the_end() {
    let mut app = chat_app(numbered(100));
    press(&mut app, KeyCode::PageUp);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.mode, Mode::Compose);
    type_text(&mut app, "hi");
    let effects = press(&mut app, KeyCode::Enter);
    assert_eq!(
        effects,
        [Effect::ask(SendChat {
            session: SESSION.into(),
            text: "hi".into()
        })]
    );
    assert_eq!(app.chat.open.as_ref().and_then(|o| o.scroll), None);
}

#[test]
fn a_long_message_being_written_shows_its_end() {
    let mut app = chat_app(Vec::new());
    app.mode = Mode::Compose;
    app.chat.input = (1..=6)
        .map(|i| format!("line {i}"))
        .collect::<Vec<_>>()
        .join("\n");
    let screen = draw(&app);
    assert!(screen.contains("line 6█"), "{screen}");
    assert!(
        !screen.contains("line 3"),
        "the top scrolled away: {screen}"
    );
}

#[test]
fn y_copies_the_newest_code_block() {
    let text = "old:\n```\nold()\n```\nnew:\n```sh\nmake test\nmake bench\n```\n";
    let answer = message(
        "m1",
        Role::Assistant,
        MessageStatus::Complete,
        vec![Part::text(text)],
    );
    let later = message(
        "m2",
        Role::User,
        MessageStatus::Complete,
        vec![Part::text("thanks")],
    );
    let mut app = chat_app(vec![answer, later]);
    press(&mut app, KeyCode::Char('y'));
    assert_eq!(
        app.chat.clipboard.as_deref(),
        Some("make test\nmake bench\n")
    );
    assert!(draw(&app).contains("copied the newest code block (2 lines)"));
}

#[test]
fn t_unfolds_thinking() {
    let thinking = Part {
        kind: PartKind::Thinking,
        text: "Maybe the warmup is too short.".into(),
        name: None,
        call_id: None,
        error: false,
    };
    let answer = message(
        "m1",
        Role::Assistant,
        MessageStatus::Complete,
        vec![thinking],
    );
    let mut app = chat_app(vec![answer]);
    assert!(draw(&app).contains("▸ thinking (6 words)"));
    press(&mut app, KeyCode::Char('t'));
    assert!(draw(&app).contains("┊ Maybe the warmup is too short."));
}

#[test]
fn the_model_picker_filters_and_switches_the_session() {
    let mut app = chat_app(Vec::new());
    let effects = press(&mut app, KeyCode::Char('M'));
    assert_eq!(effects, [Effect::ask(ListProviders { check: false })]);
    app.chat.models = vec![
        "anthropic/claude".into(),
        "openai/gpt-4o".into(),
        "openai/gpt-4o-mini".into(),
        "local/qwen/Qwen3-8B".into(),
    ];
    type_text(&mut app, "gpt");
    press(&mut app, KeyCode::Down);
    insta::assert_snapshot!(draw(&app));
    let effects = press(&mut app, KeyCode::Enter);
    assert!(
        effects
            == [Effect::ask(SetSessionModel {
                session: SESSION.into(),
                model: "openai/gpt-4o-mini".into()
            })],
        "{effects:?}"
    );
}

#[test]
fn the_usage_panel_totals_days_and_sessions() {
    let mut app = chat_app(Vec::new());
    let effects = press(&mut app, KeyCode::Char('u'));
    assert_eq!(effects, [Effect::ask(UsageQuery {})]);
    let totals = |key: &str, answers, input, output, cost_usd| UsageTotals {
        key: key.into(),
        answers,
        input,
        output,
        cached: 0,
        cost_usd,
    };
    app.chat.usage = Some(UsageReport {
        sessions: vec![totals(SESSION, 14, 52_300, 9_870, 0.4210)],
        days: vec![
            totals("2027-01-14", 3, 900, 450, 0.0050),
            totals(&reagent::time::utc_date(NOW), 11, 51_400, 9_420, 0.4160),
        ],
    });
    insta::assert_snapshot!(draw(&app));
    assert!(press(&mut app, KeyCode::Char('x')).is_empty());
    assert_eq!(app.mode, Mode::Normal, "any key closes it");
    assert!(
        draw(&app).contains("today $0.4160"),
        "the status bar shows today"
    );
}

#[test]
fn help_in_the_chat_view_lists_chat_keys() {
    let mut app = chat_app(Vec::new());
    app.size = (100, 40);
    app.mode = Mode::Help;
    let screen = draw(&app);
    assert!(screen.contains("search the session"), "{screen}");
    assert!(
        !screen.contains("stop the selected run"),
        "run keys are not chat keys"
    );
    insta::assert_snapshot!(screen);
}

#[test]
fn r_renames_the_open_session() {
    let mut app = chat_app(Vec::new());
    press(&mut app, KeyCode::Char('r'));
    assert_eq!(app.mode, Mode::Palette("rename nan hunt".into()));
    for _ in 0.."nan hunt".len() {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "lr sweep");
    let effects = press(&mut app, KeyCode::Enter);
    assert!(
        effects
            == [Effect::ask(RenameSession {
                session: SESSION.into(),
                title: "lr sweep".into()
            })],
        "{effects:?}"
    );
}

#[test]
fn a_long_conversation_shows_its_end() {
    let app = chat_app(numbered(10_000));
    let screen = draw(&app);
    assert!(screen.contains("message number 9999"), "{screen}");
    assert!(
        !screen.contains("message number 9990 "),
        "only the end fits"
    );
}

/// A `chat_retrying` event for answer `m2` of the open session.
fn retrying(attempt: u32, delay_ms: u64) -> EventKind {
    EventKind::ChatRetrying {
        session: SESSION.into(),
        message: "m2".into(),
        attempt,
        delay_ms,
        status: 429,
        provider: "openai".into(),
    }
}

#[test]
fn a_retry_shows_in_the_streaming_answer_until_text_arrives() {
    let question = message(
        "m1",
        Role::User,
        MessageStatus::Complete,
        vec![Part::text("why NaN?")],
    );
    let answer = message("m2", Role::Assistant, MessageStatus::Streaming, Vec::new());
    let mut app = chat_app(vec![question, answer]);
    assert!(app.chat.apply(&retrying(1, 2000)));
    let screen = draw(&app);
    assert!(
        screen.contains("▌ retrying in 2 s (429 from openai)"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
    assert!(app.chat.apply(&retrying(2, 4000)));
    assert!(draw(&app).contains("retrying in 4 s (429 from openai, attempt 2)"));

    let first_text = EventKind::Delta {
        session: SESSION.into(),
        message: "m2".into(),
        part: 0,
        kind: PartKind::Text,
        offset: 0,
        text: "Check the".into(),
    };
    assert!(app.chat.apply(&first_text));
    let screen = draw(&app);
    assert!(screen.contains("Check the"), "{screen}");
    assert!(!screen.contains("retrying"), "text arrived: {screen}");

    // An answer that ends while it waits drops the note too.
    assert!(app.chat.apply(&retrying(3, 8000)));
    let mut ended = message("m2", Role::Assistant, MessageStatus::Error, Vec::new());
    ended.error = Some("gave up after 30 s".into());
    assert!(app.chat.apply(&EventKind::Message { message: ended }));
    assert!(!draw(&app).contains("retrying"));
}

/// What a chat opened from an alert is given: the alert, then the metric lines around it.
fn alert_context() -> String {
    let mut text = String::from(
        "You help a person who watches a machine-learning run. An alert was raised on it.\n\n\
         Alert (critical, rule nan): loss is NaN at step 50\n\
         Run train, running, in /work\n$ python train.py\n\n\
         Its metrics around step 50 (JSON lines):\n```\n",
    );
    for step in 45..=55 {
        let loss = if step == 50 { "\"NaN\"" } else { "1.0" };
        text.push_str(&format!("{{\"loss\":{loss},\"step\":{step}.0}}\n"));
    }
    text.push_str("```");
    text
}

#[test]
fn an_alerts_context_tops_the_session_folded_and_o_unfolds_it() {
    let mut app = chat_app(Vec::new());
    app.size = (100, 40);
    // The session's system prompt may arrive after it was opened.
    let session = SessionInfo {
        id: SESSION.into(),
        title: Some("alert 1a2b on train".into()),
        model: "anthropic/claude".into(),
        system: Some(alert_context()),
        cwd: "/work".into(),
        created_at: NOW,
        agent: Default::default(),
    };
    assert!(app.chat.apply(&EventKind::Session { session }));
    let folded = draw(&app);
    assert!(
        folded.contains("system · what the model was told, 20 lines"),
        "{folded}"
    );
    assert!(
        folded.contains("┊ Alert (critical, rule nan): loss is NaN at step"),
        "{folded}"
    );
    assert!(folded.contains("… 16 more lines · o unfolds"), "{folded}");
    assert!(!folded.contains(r#""step":50.0"#), "folded: {folded}");
    insta::assert_snapshot!(folded);

    press(&mut app, KeyCode::Char('o'));
    let unfolded = draw(&app);
    assert!(
        unfolded.contains(r#"┊ {"loss":"NaN","step":50.0}"#),
        "{unfolded}"
    );
    assert!(unfolded.contains("o folds"), "{unfolded}");

    // It stays above the conversation once messages come.
    let question = message(
        "m1",
        Role::User,
        MessageStatus::Complete,
        vec![Part::text("what went wrong?")],
    );
    assert!(app.chat.apply(&EventKind::Message { message: question }));
    press(&mut app, KeyCode::Char('o'));
    let screen = draw(&app);
    let (system, asked) = (screen.find("system ·"), screen.find("what went wrong?"));
    assert!(system.is_some() && system < asked, "{screen}");
}
