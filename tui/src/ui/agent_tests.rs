//! The research agent on screen: tool calls folded and unfolded with their results, the
//! approval box (a diff coloured as one), the wild bar, and the keys that answer.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use reagent::agent::{Approval, ApprovalState, WildState};
use reagent::chat::{MessageInfo, MessageStatus, Part, PartKind, Role};
use reagent::protocol::{AnswerApproval, EventKind, SetSessionAgent};

use super::tests::draw;
use super::tests_chat::{SESSION, chat_app, message};
use crate::app::App;
use crate::app::fixtures;
use crate::app::state::{Focus, Mode, View};
use crate::app::update::{Effect, on_key};

fn press(app: &mut App, code: KeyCode) -> Vec<Effect> {
    on_key(app, KeyEvent::new(code, KeyModifiers::NONE))
}

fn call(id: &str, name: &str, arguments: &str) -> Part {
    Part {
        kind: PartKind::ToolCall,
        text: arguments.into(),
        name: Some(name.into()),
        call_id: Some(id.into()),
        error: false,
    }
}

/// An answer that called four tools: one returned three lines, one failed, one waits for
/// an approval (`c3`, when the test asks one) and one runs.
fn answer_with_tools() -> MessageInfo {
    let parts = vec![
        Part::text("Let me look at the log and start a run."),
        call("c1", "run_logs", r#"{"run": "a1b2c3d4", "lines": 3}"#),
        call("c2", "file_read", r#"{"path": "missing.py"}"#),
        call(
            "c3",
            "run_start",
            r#"{"command": "python train.py --lr 3e-4 --warmup 2000 --epochs 10", "gpus": 1}"#,
        ),
        call("c4", "runs_list", "{}"),
        Part::tool_result(
            "c1",
            "run_logs",
            "step 1999 loss 2.31\nstep 2000 loss nan\n\x1b]52;c;aGk=\x07Traceback",
            false,
        ),
        Part::tool_result("c2", "file_read", "missing.py: no such file", true),
    ];
    message("m2", Role::Assistant, MessageStatus::Complete, parts)
}

/// The chat view at 100x30 on an answer that called tools, `c3` waiting for an approval.
fn tools_app() -> App {
    let question = message(
        "m1",
        Role::User,
        MessageStatus::Complete,
        vec![Part::text("why NaN?")],
    );
    let mut app = chat_app(vec![question, answer_with_tools()]);
    app.size = (100, 30);
    app.agent.approval(Approval {
        session: SESSION.into(),
        message: "m2".into(),
        ..fixtures::approval("ap1", "c3", 10, ApprovalState::Pending)
    });
    app
}

/// The frame's buffer, to read colours.
fn buffer(app: &App) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(app.size.0, app.size.1)).unwrap();
    terminal.draw(|frame| super::render(app, frame)).unwrap();
    terminal.backend().buffer().clone()
}

/// The colour of the first cell of the first occurrence of `text` on screen.
fn colour_of(buffer: &Buffer, text: &str) -> Option<Color> {
    let area = buffer.area;
    for y in 0..area.height {
        let row: String = (0..area.width)
            .map(|x| buffer[(x, y)].symbol().to_string())
            .collect();
        if let Some(at) = row.find(text) {
            let x = row[..at].chars().count();
            return Some(buffer[(u16::try_from(x).ok()?, y)].fg);
        }
    }
    None
}

#[test]
fn tool_calls_fold_to_a_line_with_their_outcome() {
    let app = tools_app();
    let screen = draw(&app);
    assert!(
        screen.contains(r#"⚙ run_logs {"run": "a1b2c3d4", "lines": 3}"#),
        "{screen}"
    );
    assert!(
        screen.contains("→ step 1999 loss 2.31 (+2 lines)"),
        "{screen}"
    );
    assert!(screen.contains("✗ missing.py: no such file"), "{screen}");
    assert!(screen.contains("… waiting for approval"), "{screen}");
    assert!(screen.contains("… running"), "{screen}");
    let long = screen
        .lines()
        .find(|line| line.contains("⚙ run_start"))
        .expect("the call");
    assert!(long.contains('…'), "cut to the width: {long}");
    let buffer = buffer(&app);
    assert_eq!(colour_of(&buffer, "✗ missing.py"), Some(Color::Red));
    insta::assert_snapshot!(screen);
}

#[test]
fn e_unfolds_every_call_with_its_whole_result() {
    let mut app = tools_app();
    app.agent.approvals.clear();
    app.size = (100, 44);
    assert!(press(&mut app, KeyCode::Char('e')).is_empty());
    let screen = draw(&app);
    assert!(screen.contains(r#"┊   "run": "a1b2c3d4""#), "{screen}");
    assert!(screen.contains("→ result, 3 lines"), "{screen}");
    assert!(screen.contains("┊ step 2000 loss nan"), "{screen}");
    // A result's escape sequence is text, not a clipboard write.
    assert!(screen.contains("┊ ^[]52;c;aGk=^GTraceback"), "{screen}");
    assert!(screen.contains("✗ error, 1 line"), "{screen}");
    let buffer = buffer(&app);
    assert_eq!(colour_of(&buffer, "missing.py: no such"), Some(Color::Red));
    insta::assert_snapshot!(screen);
    press(&mut app, KeyCode::Char('e'));
    assert!(!draw(&app).contains("→ result, 3 lines"), "folded again");
}

/// The approval of a file edit: its action is the file's unified diff.
fn edit_approval() -> Approval {
    let diff = "--- train.py\n+++ train.py\n@@ -10,4 +10,4 @@\n model = build()\n\
                -lr = 1e-3\n+lr = 3e-4\n epochs = 10\n";
    Approval {
        session: SESSION.into(),
        tool: "file_edit".into(),
        action: diff.into(),
        ..fixtures::approval("ap1", "c9", 10, ApprovalState::Pending)
    }
}

#[test]
fn the_approval_box_shows_the_diff_coloured_and_y_approves() {
    let mut app = chat_app(Vec::new());
    app.size = (100, 30);
    app.agent.approval(edit_approval());
    app.agent.approval(Approval {
        session: SESSION.into(),
        ..fixtures::approval("ap2", "c10", 20, ApprovalState::Pending)
    });
    let screen = draw(&app);
    assert!(
        screen.contains("⚠ file_edit in nan hunt · 1 of 2"),
        "{screen}"
    );
    assert!(screen.contains("y approve · n deny · a always"), "{screen}");
    let buffer = buffer(&app);
    assert_eq!(colour_of(&buffer, "+lr = 3e-4"), Some(Color::Green));
    assert_eq!(colour_of(&buffer, "-lr = 1e-3"), Some(Color::Red));
    assert_eq!(colour_of(&buffer, "@@ -10,4"), Some(Color::Cyan));
    insta::assert_snapshot!(screen);

    let effects = press(&mut app, KeyCode::Char('y'));
    let answer = AnswerApproval {
        id: "ap1".into(),
        approve: true,
        always: false,
        reason: None,
    };
    assert!(effects == [Effect::ask(answer)], "{effects:?}");
    assert!(
        press(&mut app, KeyCode::Char('y')).is_empty(),
        "answered once"
    );
    assert!(draw(&app).contains("answered · waiting for the daemon"));
    assert_eq!(app.chat.clipboard, None, "y did not copy");

    // Whoever answered, the settled approval takes the box away; the next one shows.
    let settled = Approval {
        state: ApprovalState::Approved,
        ..edit_approval()
    };
    assert!(app.apply_event(reagent::protocol::Event {
        seq: app.seq + 1,
        ts: 0,
        kind: EventKind::Approval { approval: settled },
    }));
    let screen = draw(&app);
    assert!(!screen.contains("file_edit"), "{screen}");
    assert!(screen.contains("⚠ run_start in nan hunt "), "{screen}");
    let settled = Approval {
        state: ApprovalState::Denied,
        session: SESSION.into(),
        ..fixtures::approval("ap2", "c10", 20, ApprovalState::Denied)
    };
    assert!(app.apply_event(reagent::protocol::Event {
        seq: app.seq + 1,
        ts: 0,
        kind: EventKind::Approval { approval: settled },
    }));
    assert!(!draw(&app).contains("⚠ "), "no box left");
}

#[test]
fn n_denies_and_a_approves_for_the_session() {
    let mut app = chat_app(Vec::new());
    app.agent.approval(edit_approval());
    let effects = press(&mut app, KeyCode::Char('n'));
    let deny = AnswerApproval {
        id: "ap1".into(),
        approve: false,
        always: false,
        reason: None,
    };
    assert!(effects == [Effect::ask(deny)], "{effects:?}");
    assert_eq!(app.view, View::Chat, "n did not start a session");

    // In the runs view too: `a` is "always" while the box shows, not the alerts view.
    let mut app = chat_app(Vec::new());
    app.view = View::Runs;
    app.focus = Focus::Runs;
    app.agent.approval(edit_approval());
    let effects = press(&mut app, KeyCode::Char('a'));
    let always = AnswerApproval {
        id: "ap1".into(),
        approve: true,
        always: true,
        reason: None,
    };
    assert!(effects == [Effect::ask(always)], "{effects:?}");
    assert_eq!(app.view, View::Runs);
}

#[test]
fn typing_a_message_is_never_an_answer() {
    let mut app = chat_app(Vec::new());
    app.agent.approval(edit_approval());
    app.mode = Mode::Compose;
    for c in "yan".chars() {
        assert!(press(&mut app, KeyCode::Char(c)).is_empty());
    }
    assert_eq!(app.chat.input, "yan");
    let screen = draw(&app);
    assert!(screen.contains("Alt-y approve"), "{screen}");
    let effects = on_key(
        &mut app,
        KeyEvent::new(KeyCode::Char('n'), KeyModifiers::ALT),
    );
    let deny = AnswerApproval {
        id: "ap1".into(),
        approve: false,
        always: false,
        reason: None,
    };
    assert!(effects == [Effect::ask(deny)], "{effects:?}");
    assert_eq!(app.chat.input, "yan", "the message is left as it was");

    // Nor are keys typed into a job.
    let mut app = chat_app(Vec::new());
    app.view = View::Runs;
    let run = app.runs[0].clone();
    app.open_pane(&run);
    app.focus = Focus::Pane;
    app.mode = Mode::Input;
    app.agent.approval(edit_approval());
    let effects = press(&mut app, KeyCode::Char('y'));
    assert!(
        effects
            .first()
            .and_then(|e| e.request::<AnswerApproval>())
            .is_none(),
        "{effects:?}"
    );
    let screen = draw(&app);
    assert!(screen.contains("Ctrl-b, then y approve"), "{screen}");
    // The job's prompt is at the bottom: the box keeps off it.
    let top = screen.lines().next().unwrap_or_default();
    assert!(top.contains("⚠ file_edit"), "{screen}");
}

#[test]
fn a_long_diff_scrolls_in_its_box() {
    let mut app = chat_app(Vec::new());
    app.size = (100, 24);
    let mut diff = String::from("--- big.py\n+++ big.py\n@@ -1,40 +1,40 @@\n");
    for i in 0..40 {
        diff.push_str(&format!("+line {i}\n"));
    }
    app.agent.approval(Approval {
        action: diff,
        ..edit_approval()
    });
    let screen = draw(&app);
    assert!(screen.contains("1-10/43 J/K"), "{screen}");
    for _ in 0..100 {
        press(&mut app, KeyCode::Char('J'));
    }
    let screen = draw(&app);
    assert!(screen.contains("+line 39"), "{screen}");
    assert!(screen.contains("34-43/43"), "{screen}");
    press(&mut app, KeyCode::Char('K'));
    assert!(draw(&app).contains("33-42/43"));
}

#[test]
fn the_wild_bar_shows_every_loop_going_on() {
    let mut app = chat_app(Vec::new());
    app.view = View::Runs;
    app.focus = Focus::Runs;
    let _ = app
        .agent
        .wild(fixtures::wild(SESSION, WildState::Waiting, None));
    let _ = app.agent.wild(fixtures::wild(
        "0dd10000",
        WildState::Ended,
        Some("finished"),
    ));
    let screen = draw(&app);
    let line = fixtures::wild(SESSION, WildState::Waiting, None).status_line();
    assert!(
        line.starts_with("wild [5e551011] lower the loss · step 3/20 · 41200 tok"),
        "{line}"
    );
    let start: String = line.chars().take(60).collect();
    assert!(screen.contains(&format!("⟳ {start}")), "{screen}");
    assert!(
        !screen.contains("0dd10000"),
        "an ended loop is not shown: {screen}"
    );
    insta::assert_snapshot!(screen);

    // The session it runs in says so, and so does a session with tools on.
    app.view = View::Chat;
    app.chat.sessions[0].agent.enabled = true;
    let screen = draw(&app);
    assert!(screen.contains("nan hunt ⚙ wild"), "{screen}");
}

#[test]
fn capital_t_turns_the_sessions_tools_on() {
    let mut app = chat_app(Vec::new());
    let effects = press(&mut app, KeyCode::Char('T'));
    let on = SetSessionAgent {
        session: SESSION.into(),
        enabled: Some(true),
        ..SetSessionAgent::default()
    };
    assert!(effects == [Effect::ask(on)], "{effects:?}");
}
