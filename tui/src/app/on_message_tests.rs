//! [`on_message`]: each kind of message from the link, what it changes and what it asks for.

use reagent::alert::{AlertStatus, Choice};
use reagent::chat::{
    MessageInfo, MessageStatus, MessageUsage, Part, ProviderInfo, Role, SessionInfo,
};
use reagent::config::PrefixKey;
use reagent::gpu::{GpuReport, GpuSourceKind};
use reagent::model::{ModelInfo, ModelState, Recipe, ServingStats};
use reagent::protocol::{
    AlertResponse, Attached, Blob, Event, EventKind, HelloReply, LaunchModel, ListAlerts,
    ListApprovals, ListProviders, ListSessions, Notification, Output, QueryMetrics, Resync,
    Snapshot, StopModel, Sync, UsageQuery, WildStatus,
};
use reagent::run::{RunInfo, RunStatus};

use super::on_message;
use crate::app::App;
use crate::app::conversation::Plain;
use crate::app::fixtures::{alert, delta, model, recipe, stats};
use crate::app::link::{Incoming, Replied};
use crate::app::models::SERVING_HISTORY;
use crate::app::request::Request;
use crate::app::state::{Focus, Link, Mode, View};
use crate::app::update::{Effect, history};
use crate::app::watch::REQUERY_MS;

fn run(id: &str, status: &str) -> RunInfo {
    serde_json::from_value(serde_json::json!({
        "id": id, "name": null, "command": ["python"], "cwd": "/", "env_keys": [],
        "status": status, "exit_code": null, "signal": null, "reason": null, "pid": 1,
        "cols": 80, "rows": 24, "created_at": 0, "started_at": 0, "ended_at": null,
        "log_path": "/x"
    }))
    .expect("a run")
}

fn session(id: &str) -> SessionInfo {
    SessionInfo {
        id: id.into(),
        title: None,
        model: "openai/gpt-4o".into(),
        system: None,
        cwd: "/".into(),
        created_at: 0,
        agent: Default::default(),
    }
}

fn answer(status: MessageStatus, text: &str) -> MessageInfo {
    MessageInfo {
        id: "m".into(),
        session: "s".into(),
        role: Role::Assistant,
        status,
        parts: vec![Part::text(text)],
        error: None,
        usage: MessageUsage::default(),
        created_at: 0,
    }
}

/// A connected cockpit with runs `aaaa` (running, shown in the pane, whose screen reflects
/// the log up to offset 10) and `bbbb`.
fn cockpit() -> App {
    let mut app = App::new("local", PrefixKey('b'), (160, 40), 0, Box::new(Plain));
    app.link = Link::Connected { clients: 1 };
    app.runs = vec![run("aaaa", "running"), run("bbbb", "running")];
    app.open_pane(&app.runs[0].clone());
    let attached = Attached {
        run: run("aaaa", "running"),
        offset: 10,
        screen: Blob(b"hello".to_vec()),
    };
    assert!(app.attached(attached, b""));
    app
}

/// `cockpit()` with chat session `s` open, its history (one answer, "Hel") loaded.
fn chatting() -> App {
    let mut app = cockpit();
    app.chat.open("s");
    assert!(
        app.chat
            .history("s", vec![answer(MessageStatus::Streaming, "Hel")])
    );
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

fn output(offset: u64, data: &[u8]) -> Incoming {
    Incoming::Note(Notification::Output(Output {
        run: "aaaa".into(),
        offset,
        data: Blob(data.to_vec()),
    }))
}

#[test]
fn a_sync_reads_the_lists_again_and_reattaches_the_pane() {
    let mut app = cockpit();
    app.say("not connected to the daemon", true);
    app.link = Link::Connecting;
    let hello: HelloReply = serde_json::from_value(serde_json::json!({
        "protocol": reagent::protocol::PROTOCOL_VERSION,
        "daemon": {"version": "0", "pid": 1, "started_at": 0, "state_dir": "d"},
        "sync": {"type": "events", "events": []}
    }))
    .expect("a hello reply");
    assert!(matches!(hello.sync, Sync::Events { .. }));
    let effects = on_message(&mut app, Incoming::Synced(hello));
    assert_eq!(
        effects,
        [
            Effect::ask(ListSessions {}),
            Effect::ask(ListAlerts::default()),
            Effect::ask(ListApprovals::default()),
            Effect::ask(WildStatus {}),
            Effect::Attach("aaaa".into())
        ]
    );
    assert_eq!(app.link, Link::Connected { clients: 1 });
    assert_eq!(app.flash, None, "the link's error is no longer true");
    let pane = app.pane.as_ref().expect("the pane stays");
    assert_eq!(pane.offset, None, "its screen waits for the new attach");
}

#[test]
fn a_resync_rereads_the_open_session_where_the_user_was() {
    let mut app = chatting();
    let open = app.chat.open.as_mut().expect("open");
    open.scroll = Some(Default::default());
    open.system_unfolded = true;
    let resync = Notification::Resync(Resync {
        reason: "slow".into(),
    });
    let effects = on_message(&mut app, Incoming::Note(resync));
    assert_eq!(
        effects,
        [history("s".into()), Effect::Attach("aaaa".into())]
    );
    let open = app.chat.open.as_ref().expect("still open");
    assert!(!open.loaded, "the history is read again");
    assert_eq!(open.scroll, Some(Default::default()), "the place is kept");
    assert!(open.system_unfolded);
}

#[test]
fn run_events_change_the_list_and_a_removed_run_leaves_the_pane() {
    let mut app = cockpit();
    app.mode = Mode::Input;
    app.focus = Focus::Pane;
    let mut ended = run("aaaa", "failed");
    ended.reason = Some("exit 1".into());
    assert!(event(&mut app, EventKind::Run { run: ended }).is_empty());
    assert_eq!(app.runs[0].status, RunStatus::Failed);
    assert_eq!(app.mode, Mode::Normal, "an ended run is not typed into");
    assert!(
        app.flash
            .as_ref()
            .is_some_and(|f| f.error && f.text.contains("exit 1"))
    );
    assert!(
        event(
            &mut app,
            EventKind::Run {
                run: run("cccc", "queued")
            }
        )
        .is_empty()
    );
    assert_eq!(app.runs.len(), 3);
    let removed = EventKind::RunRemoved { id: "aaaa".into() };
    assert!(event(&mut app, removed).is_empty());
    assert_eq!(app.runs.len(), 2);
    assert!(app.pane.is_none());
    assert_eq!(app.focus, Focus::Runs, "the keyboard goes back to the list");
}

#[test]
fn an_old_event_is_skipped() {
    let mut app = cockpit();
    app.seq = 5;
    let stale = Event {
        seq: 5,
        ts: 0,
        kind: EventKind::RunRemoved { id: "aaaa".into() },
    };
    let effects = on_message(&mut app, Incoming::Note(Notification::Event(stale)));
    assert!(effects.is_empty());
    assert_eq!(app.runs.len(), 2, "seq 5 was applied already");
}

#[test]
fn output_feeds_the_pane_and_a_gap_reattaches_it() {
    let mut app = cockpit();
    assert!(on_message(&mut app, output(5, b"hello, world")).is_empty());
    assert_eq!(app.pane.as_ref().and_then(|p| p.offset), Some(17));
    assert!(
        on_message(&mut app, output(17, b"!")).is_empty(),
        "output continues where the screen is"
    );
    assert_eq!(
        on_message(&mut app, output(99, b"lost")),
        [Effect::Attach("aaaa".into())],
        "bytes 18..99 were dropped upstream"
    );
    assert_eq!(app.pane.as_ref().and_then(|p| p.offset), None);
}

#[test]
fn an_attach_reply_with_a_gap_attaches_again() {
    let mut app = cockpit();
    app.reset_pane();
    // Output that overtook the reply, from past a gap after the screen's offset.
    assert!(on_message(&mut app, output(50, b"later")).is_empty());
    let attached = Attached {
        run: run("aaaa", "running"),
        offset: 20,
        screen: Blob(Vec::new()),
    };
    let effects = reply(&mut app, Replied::Attached(Box::new(attached), Vec::new()));
    assert_eq!(effects, [Effect::Attach("aaaa".into())]);
}

#[test]
fn a_finished_answer_refreshes_the_usage_in_the_chat_view_only() {
    let mut app = chatting();
    let done = |app: &mut App| {
        let message = answer(MessageStatus::Complete, "Hello");
        event(app, EventKind::Message { message })
    };
    assert!(done(&mut app).is_empty(), "the runs view shows no usage");
    app.view = View::Chat;
    assert_eq!(done(&mut app), [Effect::ask(UsageQuery {})]);
    let streaming = answer(MessageStatus::Streaming, "Hello!");
    assert!(
        event(&mut app, EventKind::Message { message: streaming }).is_empty(),
        "a streaming answer is not finished"
    );
}

#[test]
fn deltas_extend_the_answer_and_a_gap_rereads_the_history() {
    let mut app = chatting();
    assert!(event(&mut app, delta(3, "lo")).is_empty());
    let open = app.chat.open.as_ref().expect("open");
    assert_eq!(open.messages[0].text(), "Hello");
    assert_eq!(event(&mut app, delta(99, "?")), [history("s".into())]);
    assert!(!app.chat.open.as_ref().is_some_and(|open| open.loaded));
}

#[test]
fn a_retry_is_noted_until_the_answer_streams_again() {
    let mut app = chatting();
    let retrying = EventKind::ChatRetrying {
        session: "s".into(),
        message: "m".into(),
        attempt: 1,
        delay_ms: 2000,
        status: 429,
        provider: "openai".into(),
    };
    assert!(event(&mut app, retrying).is_empty());
    let open = app.chat.open.as_ref().expect("open");
    let note = &open.retry_of("m").expect("a retry is waited for").note;
    assert!(note.contains("429"), "{note}");
    assert!(event(&mut app, delta(3, "lo")).is_empty());
    let open = app.chat.open.as_ref().expect("open");
    assert!(open.retry_of("m").is_none(), "text arrived");
}

#[test]
fn metrics_ticks_requery_a_shown_chart_at_most_every_interval() {
    let mut app = cockpit();
    app.view = View::Charts;
    let tick = |app: &mut App| {
        event(
            app,
            serde_json::from_value(serde_json::json!({
                "type": "metrics", "run": "aaaa", "points": 1, "last_step": 1.0, "latest": []
            }))
            .expect("a metrics event"),
        )
    };
    app.now = REQUERY_MS;
    let effects = tick(&mut app);
    let asked: Vec<&str> = effects
        .iter()
        .filter_map(|e| e.request::<QueryMetrics>())
        .map(|query| query.run.as_str())
        .collect();
    assert_eq!(asked, ["aaaa"], "the selected run's chart");
    app.now += REQUERY_MS - 1;
    assert!(
        tick(&mut app).is_empty(),
        "too soon: the clock tick asks later"
    );
    assert!(app.charts.stale);
    app.view = View::Runs;
    app.now += REQUERY_MS;
    assert!(tick(&mut app).is_empty(), "no chart is shown");
}

#[test]
fn alerts_are_listed_and_a_chat_answer_opens_its_session() {
    let mut app = cockpit();
    assert!(
        event(
            &mut app,
            EventKind::Alert {
                alert: alert("a1", AlertStatus::Open)
            }
        )
        .is_empty()
    );
    assert_eq!(app.alerts.open(), 1);
    assert!(
        reply(
            &mut app,
            Replied::Alerts(vec![
                alert("a1", AlertStatus::Open),
                alert("a2", AlertStatus::Open)
            ])
        )
        .is_empty()
    );
    assert_eq!(app.alerts.alerts.len(), 2);
    let mut answered = alert("a2", AlertStatus::Open);
    answered.status = AlertStatus::Answered;
    answered.response = Some(Choice::Chat);
    let response = AlertResponse {
        alert: answered,
        session: Some("s9".into()),
    };
    let effects = reply(&mut app, Replied::Answered(Box::new(response)));
    assert_eq!(
        effects,
        [Effect::ask(ListSessions {}), history("s9".into())]
    );
    assert_eq!(app.view, View::Chat);
    assert_eq!(app.chat.open.as_ref().map(|o| o.id.as_str()), Some("s9"));
    assert_eq!(app.focus, Focus::Pane);
    assert_eq!(
        app.flash.as_ref().map(|f| f.text.as_str()),
        Some("alert a2: chat")
    );
}

#[test]
fn a_created_session_opens_ready_to_write() {
    let mut app = cockpit();
    app.view = View::Chat;
    let effects = reply(&mut app, Replied::SessionCreated(session("s2")));
    assert_eq!(effects, [history("s2".into())]);
    assert_eq!(
        app.chat.selected_session().map(|s| s.id.as_str()),
        Some("s2")
    );
    assert_eq!(app.mode, Mode::Compose);
    assert_eq!(app.focus, Focus::Pane);
}

#[test]
fn a_history_with_a_gap_is_read_again() {
    let mut app = cockpit();
    app.chat.open("s");
    // A delta past what the history will hold arrives first.
    assert!(
        event(&mut app, delta(99, "?")).is_empty(),
        "held for the history"
    );
    let effects = reply(
        &mut app,
        Replied::History("s".into(), vec![answer(MessageStatus::Streaming, "Hel")]),
    );
    assert_eq!(effects, [history("s".into())]);
}

#[test]
fn replies_report_on_the_status_line() {
    let mut app = cockpit();
    assert!(reply(&mut app, Replied::Done(String::new())).is_empty());
    assert_eq!(app.flash, None, "a quiet success says nothing");
    reply(&mut app, Replied::Done("stopping aaaa".into()));
    assert!(app.flash.as_ref().is_some_and(|f| !f.error));
    reply(&mut app, Replied::Failed("no such run".into()));
    assert!(
        app.flash
            .as_ref()
            .is_some_and(|f| f.error && f.text == "no such run")
    );
    let started = reply(&mut app, Replied::Started(Box::new(run("cccc", "running"))));
    assert!(started.is_empty());
    assert_eq!(app.selected_run().map(|r| r.id.as_str()), Some("cccc"));
    reply(&mut app, Replied::Models(vec!["openai/gpt-4o".into()]));
    assert_eq!(app.chat.models, ["openai/gpt-4o"]);
}

#[test]
fn a_lost_link_is_shown_and_asks_for_nothing() {
    let mut app = cockpit();
    let down = Incoming::Down {
        reason: "the daemon closed the connection".into(),
        retry_in_ms: 500,
    };
    assert!(on_message(&mut app, down).is_empty());
    assert!(matches!(
        app.link,
        Link::Disconnected {
            retry_in_ms: 500,
            ..
        }
    ));
    let shutdown = Notification::Shutdown(reagent::protocol::Ack {});
    assert!(on_message(&mut app, Incoming::Note(shutdown)).is_empty());
}

/// A hello whose snapshot holds these recipes and models (and nothing else).
fn snapshot(recipes: Vec<Recipe>, models: Vec<ModelInfo>) -> Incoming {
    let snapshot = Snapshot {
        seq: 10,
        runs: vec![run("aaaa", "running"), run("bbbb", "running")],
        clients: 1,
        gpus: GpuReport::empty(GpuSourceKind::None, None),
        sweeps: Vec::new(),
        trends: Default::default(),
        recipes,
        models,
    };
    Incoming::Synced(HelloReply {
        protocol: reagent::protocol::PROTOCOL_VERSION,
        daemon: reagent::protocol::DaemonInfo {
            version: "0".into(),
            pid: 1,
            started_at: 0,
            state_dir: "d".into(),
        },
        sync: Sync::Snapshot(snapshot),
    })
}

fn serving(app: &mut App, name: &str, stats: ServingStats) -> Vec<Effect> {
    let model = name.into();
    event(app, EventKind::Serving { model, stats })
}

#[test]
fn the_snapshot_and_events_keep_recipes_models_and_serving_history() {
    let mut app = cockpit();
    let mut ready = model("qwen", ModelState::Ready, 0);
    ready.serving = Some(stats(1_000, 100.0, 0.25));
    let mut failed = model("llama", ModelState::Failed, 0);
    failed.reason = Some("its server exited with code 1".into());
    on_message(
        &mut app,
        snapshot(vec![recipe("qwen"), recipe("llama")], vec![ready, failed]),
    );
    let names: Vec<&str> = app.models.recipes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["llama", "qwen"], "by name, for the picker");
    assert_eq!(app.models.models.len(), 2);
    assert_eq!(
        app.models.history["qwen"].len(),
        1,
        "the snapshot's latest figures start the sparklines"
    );
    assert!(
        !app.models.history.contains_key("llama"),
        "a failed model serves nothing"
    );

    // Each scrape extends the lines once, raises the peaks and becomes the current figures.
    for ts in 2..=70 {
        let gen_tps = if ts == 30 { 900.0 } else { 100.0 };
        assert!(serving(&mut app, "qwen", stats(ts * 1_000, gen_tps, 0.5)).is_empty());
    }
    serving(&mut app, "qwen", stats(70_000, 5.0, 0.5));
    let history = &app.models.history["qwen"];
    assert_eq!(history.len(), SERVING_HISTORY, "the newest samples only");
    assert_eq!(history.back().map(|s| s.ts), Some(70_000));
    assert_eq!(
        history.back().and_then(|s| s.gen_tps),
        Some(100.0),
        "a scrape seen twice counts once"
    );
    let qwen = app.models.get("qwen").expect("qwen");
    assert_eq!(qwen.peaks.gen_tps, 900.0);
    assert_eq!(qwen.peaks.kv_cache, 0.5);
    assert_eq!(qwen.serving.as_ref().map(|s| s.ts), Some(70_000));
    serving(&mut app, "llama", stats(71_000, 50.0, 0.1));
    assert!(
        !app.models.history.contains_key("llama"),
        "figures for a model that does not serve are dropped"
    );

    // A relaunch is a new server: its lines start afresh.
    let relaunch = model("qwen", ModelState::Launching, 80_000);
    assert!(event(&mut app, EventKind::Model { model: relaunch }).is_empty());
    assert!(!app.models.history.contains_key("qwen"));
    assert_eq!(
        app.models.get("qwen").map(|m| m.state),
        Some(ModelState::Launching)
    );
    assert_eq!(app.models.models.len(), 2, "one instance per recipe");

    let recipe_event = EventKind::Recipe {
        recipe: recipe("gemma"),
    };
    event(&mut app, recipe_event);
    event(
        &mut app,
        EventKind::RecipeRemoved {
            name: "llama".into(),
        },
    );
    let names: Vec<&str> = app.models.recipes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["gemma", "qwen"]);
    reply(&mut app, Replied::Recipes(vec![recipe("z"), recipe("a")]));
    let names: Vec<&str> = app.models.recipes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "z"], "recipes.list replaces them");
}

#[test]
fn a_model_that_starts_or_stops_serving_refreshes_an_open_model_picker() {
    let mut app = cockpit();
    let launching = |app: &mut App, state| {
        let model = model("qwen", state, 0);
        event(app, EventKind::Model { model })
    };
    assert!(
        launching(&mut app, ModelState::Launching).is_empty(),
        "no picker is open"
    );
    app.view = View::Chat;
    app.mode = Mode::Models(Default::default());
    assert!(
        launching(&mut app, ModelState::WaitingHealth).is_empty(),
        "still not serving: the `local` models are the same"
    );
    let refresh = [Effect::ask(ListProviders { check: false })];
    assert_eq!(launching(&mut app, ModelState::Ready), refresh);
    assert_eq!(launching(&mut app, ModelState::Stopped), refresh);
}

#[test]
fn ready_models_are_local_provider_models_in_the_picker() {
    let provider = |name: &str, models: &[&str]| ProviderInfo {
        name: name.into(),
        kind: "openai".into(),
        base_url: "http://127.0.0.1:8001/v1".into(),
        models: models.iter().map(|m| m.to_string()).collect(),
        has_key: true,
        answers: None,
    };
    let listed = ListProviders { check: false }.replied(vec![
        provider("openai", &["gpt-4o"]),
        provider("local", &["qwen", "llama"]),
    ]);
    let mut app = cockpit();
    reply(&mut app, listed);
    assert_eq!(
        app.chat.models,
        ["openai/gpt-4o", "local/qwen", "local/llama"]
    );
}

#[test]
fn launch_and_stop_replies_say_how_it_went_in_one_line() {
    let launch = LaunchModel {
        recipe: "qwen".into(),
        preempt: false,
    };
    let Replied::Done(done) = launch.clone().replied(model("qwen", ModelState::Ready, 0)) else {
        panic!("a ready model is a success");
    };
    assert_eq!(done, "qwen is ready on port 8001");
    let error = "qwen failed: its server exited with code 1; the last lines of its log:\n\
                 Traceback (most recent call last):\n\x1b[31mCUDA out of memory\x1b[0m\n";
    let mut app = cockpit();
    reply(&mut app, launch.failed(error.into()));
    let flash = app.flash.as_ref().expect("said");
    assert!(flash.error);
    assert_eq!(
        flash.text,
        "qwen failed: its server exited with code 1; the last lines of its log · L shows the rest"
    );
    let stopped = StopModel {
        name: "qwen".into(),
    }
    .replied(model("qwen", ModelState::Stopped, 0));
    assert!(matches!(stopped, Replied::Done(text) if text == "stopped qwen"));
}
