//! Snapshot tests of the models view: launches with their progress bars, a ready model with
//! its sparklines and peaks, a failure with the end of its server's log, the launch picker,
//! the view as a side panel.

use reagent::model::{ModelState, ServingPeaks};
use reagent::protocol::{Attached, Blob, Event, EventKind};
use reagent::run::RunStatus;

use super::tests::{NOW, app_with_runs, draw, run};
use crate::app::App;
use crate::app::fixtures::{model, recipe, stats};
use crate::app::side::Side;
use crate::app::state::{Focus, Mode, View};

/// The models view full screen, with recipes `llama-70b`, `qwen-7b` and `tiny`.
fn models_app(size: (u16, u16)) -> App {
    let mut app = app_with_runs();
    app.size = size;
    app.view = View::Models;
    app.models.recipes = vec![recipe("llama-70b"), recipe("qwen-7b"), recipe("tiny")];
    app
}

/// `qwen-7b` ready for ten minutes, with two and a half minutes of scrapes (one every 2 s,
/// more than the sparklines keep) that rise and fall, its peaks above what they show.
fn serving_app(size: (u16, u16)) -> App {
    let mut app = models_app(size);
    let mut qwen = model("qwen-7b", ModelState::Ready, NOW - 640_000);
    qwen.requests = 1_284;
    qwen.last_request_at = Some(NOW - 3_000);
    qwen.peaks = ServingPeaks {
        gen_tps: 1_840.0,
        prompt_tps: 9_120.0,
        waiting: 4.0,
        kv_cache: 0.91,
    };
    app.models.models = vec![qwen];
    app.runs.push(run(
        "m0de1000",
        Some("model-qwen-7b"),
        RunStatus::Running,
        None,
        640,
    ));
    for i in 0..75_i64 {
        let wave = ((i as f64) / 4.0).sin().abs();
        let kind = EventKind::Serving {
            model: "qwen-7b".into(),
            stats: stats(
                NOW - (75 - i) * 2_000,
                200.0 + 1_200.0 * wave,
                0.2 + 0.5 * wave,
            ),
        };
        let seq = app.seq + 1;
        app.apply_event(Event { seq, ts: 0, kind });
    }
    app
}

#[test]
fn models_launching_with_a_progress_bar() {
    let mut app = models_app((100, 16));
    let mut llama = model("llama-70b", ModelState::WaitingHealth, NOW - 95_000);
    llama.gpus = vec![0, 1];
    let mut tiny = model("tiny", ModelState::WaitingLock, NOW - 12_000);
    tiny.reason = Some("waiting for the launch of llama-70b, which holds GPU 0".into());
    let mut qwen = model("qwen-7b", ModelState::Evicting, NOW - 4_000);
    qwen.gpus = vec![2];
    qwen.reason = Some("stopping gemma (least recently used)".into());
    app.models.models = vec![llama, tiny, qwen];
    let screen = draw(&app);
    assert!(
        screen.contains("waiting_health · vllm · GPUs 0,1"),
        "{screen}"
    );
    assert!(screen.contains("50% · 1m35s"), "{screen}");
    assert!(screen.contains("holds GPU 0"), "why it waits: {screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn models_ready_with_sparklines_and_peaks() {
    let app = serving_app((100, 14));
    let screen = draw(&app);
    assert!(screen.contains("peak 1.8k"), "{screen}");
    assert!(screen.contains("peak 91%"), "{screen}");
    assert!(screen.contains("1284 requests"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn models_failed_with_a_reason() {
    let mut app = models_app((100, 20));
    let mut broken = model("llama-70b", ModelState::Failed, NOW - 30_000);
    broken.ended_at = Some(NOW - 20_000);
    broken.run = Some("m0de1000".into());
    let mut log = String::from("its server exited with code 1; the last lines of its log:\n");
    for i in 0..40 {
        log.push_str(&format!("INFO 01-15 loading shard {i}/40\r\n"));
    }
    // Colours and a progress bar rewritten by carriage returns, as a server's log holds them;
    // an escape that would write the clipboard must not reach the terminal.
    log.push_str("Loading: 10%\rLoading: 100%\r\n");
    log.push_str("\x1b[31mERROR\x1b[0m torch.OutOfMemoryError: CUDA out of memory.\r\n");
    log.push_str("\x1b]52;c;aGk=\x07Tried to allocate 2.00 GiB\u{9b}2J\r\n");
    broken.reason = Some(log);
    let mut other = model("tiny", ModelState::Failed, NOW - 90_000);
    other.reason = Some("needs 80 GiB on 1 GPU; only a training run could make room".into());
    app.models.models = vec![broken, other];
    let screen = draw(&app);
    assert!(!screen.contains('\x1b'), "{screen}");
    assert!(
        screen.contains("CUDA out of memory"),
        "the end of the log: {screen}"
    );
    assert!(
        screen.contains("Loading: 100%"),
        "as a terminal showed it: {screen}"
    );
    assert!(
        screen.contains("35 earlier lines · Enter shows its whole log"),
        "{screen}"
    );
    assert!(screen.contains("only a training run"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn the_launch_picker_lists_the_recipes() {
    let mut app = serving_app((100, 14));
    app.mode = Mode::Launch(2);
    let screen = draw(&app);
    assert!(screen.contains("(ready)"), "qwen-7b serves: {screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn no_models_say_how_to_launch_one() {
    let mut app = models_app((100, 8));
    let screen = draw(&app);
    assert!(
        screen.contains("n launches one of: llama-70b, qwen-7b, tiny."),
        "{screen}"
    );
    app.models.recipes.clear();
    assert!(draw(&app).contains("reagent recipe add"));
}

#[test]
fn models_in_the_side_panel_beside_the_server_log() {
    let mut app = serving_app((150, 16));
    app.view = View::Runs;
    app.side.shown = Some(Side::Models);
    app.focus = Focus::Side;
    // Enter in the panel put the server's run in the pane.
    let server = app.runs[3].clone();
    app.selected = 3;
    app.open_pane(&server);
    let log = b"INFO Started server process\r\nINFO Application startup complete.\r\n\
                INFO 127.0.0.1 \"POST /v1/chat/completions\" 200\r\n";
    let attached = Attached {
        run: server,
        offset: log.len() as u64,
        screen: Blob(log.to_vec()),
    };
    assert!(app.attached(attached, &[]));
    let screen = draw(&app);
    assert!(screen.contains("Models (1)"), "{screen}");
    assert!(screen.contains("n launch · s stop"), "the footer: {screen}");
    insta::assert_snapshot!(screen);
}
