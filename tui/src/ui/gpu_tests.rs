//! Snapshot tests of the GPU panel and its status-bar summary: one GPU, eight (fake), none.

use reagent::gpu::{GpuInfo, GpuProcess, GpuReport, GpuSourceKind};
use reagent::run::RunStatus;

use super::tests::{NOW, app_with_runs, draw, run};
use crate::app::App;

fn gpu(index: u32, util: u32, fake: bool) -> GpuInfo {
    GpuInfo {
        index,
        name: if fake {
            format!("Fake GPU {index}")
        } else {
            "NVIDIA A100-SXM4-80GB".into()
        },
        uuid: format!("GPU-{index}"),
        fake,
        util_pct: Some(util),
        mem_used_mib: 1024 * u64::from(util) / 2,
        mem_total_mib: 81_920,
        temp_c: Some(30 + util / 3),
        power_w: Some(60.0 + f64::from(util) * 2.0),
        power_limit_w: Some(400.0),
        fan_pct: None,
        sm_clock_mhz: Some(1410),
        mem_clock_mhz: Some(1593),
        processes: Vec::new(),
        assigned_to: None,
        model: None,
    }
}

fn with_gpus(source: GpuSourceKind, gpus: Vec<GpuInfo>, size: (u16, u16)) -> App {
    let mut app = app_with_runs();
    app.size = size;
    app.show_gpus = true;
    let history = gpus
        .iter()
        .map(|g| {
            (0..30u32)
                .map(|t| ((t * 7 + g.index * 11) % 100) as u8)
                .collect()
        })
        .collect();
    app.gpus = GpuReport {
        source,
        unavailable: None,
        ts: NOW,
        gpus,
        history,
    };
    app
}

#[test]
fn one_gpu_used_by_a_run() {
    let mut a100 = gpu(0, 87, false);
    a100.processes.push(GpuProcess {
        pid: 4242,
        used_mib: Some(40_000),
        run: Some("a1b2c3d4".into()),
    });
    let app = with_gpus(GpuSourceKind::Nvml, vec![a100], (120, 20));
    let screen = draw(&app);
    assert!(screen.contains("train-gpt"), "the run using it, by name");
    assert!(screen.contains("GPU×1 87%"), "the status bar summary");
    insta::assert_snapshot!(screen);
}

#[test]
fn eight_fake_gpus_are_marked_fake() {
    let mut gpus: Vec<GpuInfo> = (0..8).map(|i| gpu(i, i * 13, true)).collect();
    gpus[1].assigned_to = Some("e5f6a7b8".into());
    let mut app = with_gpus(GpuSourceKind::Fake, gpus, (130, 26));
    app.runs.push(run(
        "0badf00d",
        Some("sweep-lr=1e-3"),
        RunStatus::Queued,
        None,
        0,
    ));
    app.runs[3].started_at = None;
    app.runs[3].reason = Some("waiting for 1 GPU: 0 of 8 free".into());
    app.runs_width = 72;
    app.sweeps.push(reagent::sweep::SweepInfo {
        id: "5eef0001".into(),
        name: "lr".into(),
        command: vec!["train".into()],
        parallel: 2,
        runs: vec!["e5f6a7b8".into(), "0badf00d".into()],
        params: Vec::new(),
        created_at: NOW,
        stopped: false,
    });
    let screen = draw(&app);
    assert_eq!(
        screen.matches("FAKE").count(),
        10,
        "each row, the title and the status bar"
    );
    assert!(
        screen.contains("waiting for 1 GPU"),
        "queued reason in the runs list"
    );
    assert!(screen.contains("Runs (4) · sweep lr 1/2"), "sweep progress");
    insta::assert_snapshot!(screen);
}

#[test]
fn no_gpus_show_the_reason() {
    let mut app = with_gpus(GpuSourceKind::None, Vec::new(), (120, 16));
    app.gpus.unavailable = Some(
        "no GPU driver: NVML cannot be loaded (a libloading error occurred: libnvidia-ml.so.1: \
         cannot open shared object file: No such file or directory) and nvidia-smi is not on PATH"
            .into(),
    );
    let screen = draw(&app);
    assert!(screen.contains("No GPUs: no GPU driver"));
    assert!(!screen.contains("GPU×"), "no summary without GPUs");
    insta::assert_snapshot!(screen);
}

#[test]
fn samples_extend_the_history_and_p_toggles_the_panel() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut app = app_with_runs();
    for util in [10, 20, 30] {
        app.gpus_sampled(NOW, GpuSourceKind::Fake, None, vec![gpu(0, util, true)]);
    }
    assert_eq!(app.gpus.history, vec![vec![10, 20, 30]]);
    assert!(!app.show_gpus);
    crate::app::update::on_key(
        &mut app,
        KeyEvent::new(KeyCode::Char('p'), KeyModifiers::NONE),
    );
    assert!(app.show_gpus);
    assert!(draw(&app).contains("GPUs (1) · FAKE"));
}

#[test]
fn readings_are_marked_stale_while_disconnected_and_link_errors_clear_on_reconnect() {
    use crate::app::state::Link;
    let mut app = with_gpus(GpuSourceKind::Nvml, vec![gpu(0, 87, false)], (120, 20));
    app.link = Link::Disconnected {
        reason: "the daemon closed the connection".into(),
        retry_in_ms: 500,
    };
    app.say("not connected to the daemon", true);
    let screen = draw(&app);
    assert!(screen.contains("80G (stale)"), "{screen}");
    assert!(screen.contains("stale: not connected"), "{screen}");
    app.synced(reagent::protocol::HelloReply {
        protocol: reagent::protocol::PROTOCOL_VERSION,
        daemon: reagent::protocol::DaemonInfo {
            version: "0".into(),
            pid: 1,
            started_at: NOW,
            state_dir: "/x".into(),
        },
        sync: reagent::protocol::Sync::Events { events: Vec::new() },
    });
    let screen = draw(&app);
    assert!(!screen.contains("not connected"), "{screen}");
    assert!(!screen.contains("stale"), "{screen}");
}

#[test]
fn a_gpu_held_by_a_model_names_it() {
    use crate::app::fixtures::model;
    use reagent::model::ModelState;
    let mut server = gpu(0, 64, false);
    server.model = Some("qwen-7b".into());
    server.processes.push(GpuProcess {
        pid: 5151,
        used_mib: Some(72_000),
        run: Some("m0de1000".into()),
    });
    let mut training = gpu(1, 87, false);
    training.assigned_to = Some("a1b2c3d4".into());
    let mut app = with_gpus(GpuSourceKind::Nvml, vec![server, training], (130, 20));
    app.models.models = vec![model("qwen-7b", ModelState::Ready, NOW - 60_000)];
    app.runs.push(run(
        "m0de1000",
        Some("model-qwen-7b"),
        RunStatus::Running,
        None,
        60,
    ));
    let screen = draw(&app);
    assert_eq!(
        screen.matches("model qwen-7b").count(),
        2,
        "the GPU's row and its process, not the server's run: {screen}"
    );
    assert!(!screen.contains("model-qwen-7b, "), "named once: {screen}");
    insta::assert_snapshot!(screen);
}
