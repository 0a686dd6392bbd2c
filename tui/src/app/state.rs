//! Everything the cockpit shows, and how daemon messages change it. No IO here: the run loop
//! feeds messages in, rendering reads it out.

use std::collections::VecDeque;

use reagent::config::PrefixKey;
use reagent::gpu::{GpuReport, GpuSourceKind};
use reagent::protocol::{Attached, Event, EventKind, HelloReply, Output, Snapshot, Sync};
use reagent::run::{RunInfo, RunStatus};
use reagent::sweep::SweepInfo;

use super::conversation::Typesetter;

/// Which panel has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// The runs list.
    Runs,
    /// The focused run's terminal.
    Pane,
    /// The side panel beside the pane (chat, charts, alerts, GPUs or models).
    Side,
}

/// What keys do right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Cockpit keys: move, open, palette, help.
    Normal,
    /// Keys go to the job in the pane; the prefix key returns to `Normal`.
    Input,
    /// The `:` command palette, with what was typed so far.
    Palette(String),
    /// The `?` overlay listing every binding.
    Help,
    /// A yes/no question before something destructive.
    Confirm(Confirm),
    /// Typing a chat message.
    Compose,
    /// Typing a search of the open session, with what was typed so far.
    Search(String),
    /// Choosing a model.
    Models(ModelPicker),
    /// The usage panel; any key closes it.
    Usage,
    /// Choosing a recipe to launch, with the index of the highlighted one.
    Launch(usize),
}

/// The model picker's state: the filter typed and the highlighted match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelPicker {
    /// Text every shown model contains.
    pub filter: String,
    /// Index into the matches.
    pub selected: usize,
}

impl ModelPicker {
    /// The models that contain the filter (ASCII case ignored).
    pub fn matches(&self, models: &[String]) -> Vec<String> {
        let filter = self.filter.to_ascii_lowercase();
        models
            .iter()
            .filter(|m| m.to_ascii_lowercase().contains(&filter))
            .cloned()
            .collect()
    }
}

/// What the main area shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Runs and the run pane.
    Runs,
    /// Chat sessions and the open conversation.
    Chat,
    /// Runs and line charts of their metrics.
    Charts,
    /// Alerts and their answers.
    Alerts,
    /// Model servers: their launches, serving figures and actions.
    Models,
    /// The gateway's requests of the last day, totalled per token.
    Gateway,
}

/// Destructive actions that ask first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    /// Stop this run (id, label).
    Stop(String, String),
    /// Remove this ended run with its log and series (id, label).
    Remove(String, String),
    /// Answer this alert `stop`, stopping its run (alert id, run label).
    StopForAlert(String, String),
    /// Stop this model, or cancel its launch when it is still launching (name, launching).
    StopModel(String, bool),
}

/// The daemon connection as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// First connection under way.
    Connecting,
    /// Connected; `clients` attached in all.
    Connected {
        /// Clients attached to the daemon, this one included.
        clients: u32,
    },
    /// Lost; retrying.
    Disconnected {
        /// Why, in a few words.
        reason: String,
        /// Milliseconds until the next attempt.
        retry_in_ms: u64,
    },
}

/// A status-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// The text.
    pub text: String,
    /// Whether it reports a failure.
    pub error: bool,
}

/// The run shown in the pane, with this client's own copy of its screen.
pub struct PaneView {
    /// The run's id.
    pub run: String,
    /// The screen, fed from the attach snapshot and then `output` notifications.
    pub parser: vt100::Parser,
    /// Log offset the screen reflects; `None` until the attach reply arrives.
    pub offset: Option<u64>,
    /// Output that arrived before the attach reply (it can overtake it).
    pending: VecDeque<Output>,
    /// Lines scrolled back from the bottom (this client's own scroll position).
    pub scroll: usize,
    /// The size this client last asked the run to take, so a resize is asked once.
    pub asked: Option<(u16, u16)>,
}

/// Scrollback lines each client keeps for its pane: a run's history is read from its log
/// when the pane attaches, so PgUp reaches this far back whenever the pane was opened.
pub const PANE_SCROLLBACK: usize = 10_000;
/// Output held while waiting for an attach reply, at most.
const MAX_PENDING: usize = 4096;

impl PaneView {
    fn new(run: &RunInfo) -> Self {
        Self {
            run: run.id.clone(),
            parser: vt100::Parser::new(run.rows.max(1), run.cols.max(1), PANE_SCROLLBACK),
            offset: None,
            pending: VecDeque::new(),
            scroll: 0,
            asked: None,
        }
    }

    /// Feeds output, skipping what the screen already holds. Returns false on a gap (bytes
    /// were dropped upstream): the pane must be re-attached.
    fn feed(&mut self, output: Output) -> bool {
        let Some(offset) = self.offset else {
            if self.pending.len() < MAX_PENDING {
                self.pending.push_back(output);
            }
            return true;
        };
        let end = output.offset + output.data.0.len() as u64;
        if end <= offset {
            return true;
        }
        if output.offset > offset {
            return false;
        }
        let skip = usize::try_from(offset - output.offset).unwrap_or(0);
        let held = self.parser.screen().scrollback();
        self.parser.process(&output.data.0[skip..]);
        // vt100 keeps a scrolled-back view on the same lines as new ones arrive; the position
        // (and the "N lines back" it is shown as) must follow, or the next key jumps.
        if self.scroll > 0 {
            self.scroll += self.parser.screen().scrollback().saturating_sub(held);
        }
        self.offset = Some(end);
        true
    }
}

/// The cockpit's state.
pub struct App {
    /// Every run, oldest first.
    pub runs: Vec<RunInfo>,
    /// Index into `runs` of the highlighted run.
    pub selected: usize,
    /// Which panel has the keyboard.
    pub focus: Focus,
    /// What keys do.
    pub mode: Mode,
    /// Whether the runs list is shown.
    pub show_runs: bool,
    /// Width of the runs list in columns.
    pub runs_width: u16,
    /// The daemon connection.
    pub link: Link,
    /// Where the daemon is (`local` or a host).
    pub place: String,
    /// The last event seq applied.
    pub seq: u64,
    /// The run in the pane, if any.
    pub pane: Option<PaneView>,
    /// The status-line message.
    pub flash: Option<Flash>,
    /// The prefix key that leaves input mode.
    pub prefix: PrefixKey,
    /// Terminal size (cols, rows).
    pub size: (u16, u16),
    /// Wall clock for runtimes, Unix ms; advanced by the run loop so rendering stays pure.
    pub now: i64,
    /// Set when the user quits.
    pub quit: bool,
    /// What the main area shows.
    pub view: View,
    /// Chat sessions and the open conversation.
    pub chat: super::chat::ChatState,
    /// The GPUs as last sampled, with utilisation history for sparklines.
    pub gpus: GpuReport,
    /// Whether the GPU panel is shown.
    pub show_gpus: bool,
    /// Lines the help overlay is scrolled down (it is taller than a small terminal).
    pub help_scroll: u16,
    /// The side panel beside the pane, and its width.
    pub side: super::side::SidePanel,
    /// Every sweep, oldest first.
    pub sweeps: Vec<SweepInfo>,
    /// The charts view's settings and points.
    pub charts: super::watch::Charts,
    /// Every alert, for the alerts view and the status bar's badge.
    pub alerts: super::watch::Alerts,
    /// Recipes and model servers, for the models view, the launch picker and the GPU panel.
    pub models: super::models::Models,
    /// The gateway's request log, for the gateway usage view.
    pub gateway: super::gateway::Gateway,
    /// The research agent: approvals waiting for a person, wild-mode loops.
    pub agent: super::agent::Agent,
    /// How chat messages are laid out as lines: given by the renderer, kept here so key
    /// handling scrolls through the lines that are drawn.
    pub typesetter: Box<dyn Typesetter>,
}

/// Utilisation samples kept per GPU for sparklines.
const GPU_HISTORY: usize = 120;

impl App {
    /// An empty cockpit whose chat messages `typesetter` lays out.
    pub fn new(
        place: &str,
        prefix: PrefixKey,
        size: (u16, u16),
        now: i64,
        typesetter: Box<dyn Typesetter>,
    ) -> Self {
        Self {
            runs: Vec::new(),
            selected: 0,
            focus: Focus::Runs,
            mode: Mode::Normal,
            show_runs: true,
            runs_width: 48,
            link: Link::Connecting,
            place: place.to_string(),
            seq: 0,
            pane: None,
            flash: None,
            prefix,
            size,
            now,
            quit: false,
            view: View::Runs,
            chat: super::chat::ChatState::default(),
            gpus: GpuReport::empty(GpuSourceKind::None, None),
            show_gpus: false,
            help_scroll: 0,
            side: super::side::SidePanel::default(),
            sweeps: Vec::new(),
            charts: super::watch::Charts::default(),
            alerts: super::watch::Alerts::default(),
            models: super::models::Models::default(),
            gateway: super::gateway::Gateway::default(),
            agent: super::agent::Agent::default(),
            typesetter,
        }
    }

    /// The highlighted run.
    pub fn selected_run(&self) -> Option<&RunInfo> {
        self.runs.get(self.selected)
    }

    /// The run shown in the pane.
    pub fn pane_run(&self) -> Option<&RunInfo> {
        let id = &self.pane.as_ref()?.run;
        self.runs.iter().find(|run| &run.id == id)
    }

    /// Counts of runs that are running and that failed, for the status bar.
    pub fn counts(&self) -> (usize, usize) {
        let count = |status| self.runs.iter().filter(|r| r.status == status).count();
        (count(RunStatus::Running), count(RunStatus::Failed))
    }

    /// Applies the handshake: a snapshot replaces the state, missed events are replayed.
    pub fn synced(&mut self, reply: HelloReply) {
        // An error said while the link was down is about the link, and no longer true.
        if self.flash.as_ref().is_some_and(|flash| flash.error) {
            self.flash = None;
        }
        match reply.sync {
            Sync::Snapshot(Snapshot {
                seq,
                runs,
                clients,
                gpus,
                sweeps,
                trends,
                recipes,
                models,
            }) => {
                let selected_id = self.selected_run().map(|r| r.id.clone());
                self.runs = runs;
                self.gpus = gpus;
                self.sweeps = sweeps;
                self.models.synced(recipes, models);
                self.charts.sparks = trends;
                self.seq = seq;
                self.link = Link::Connected { clients };
                self.reselect(selected_id.as_deref());
            }
            Sync::Events { events } => {
                if !matches!(self.link, Link::Connected { .. }) {
                    self.link = Link::Connected { clients: 1 };
                }
                for event in events {
                    // The caller re-reads the open session after any resync anyway.
                    let _ = self.apply_event(event);
                }
            }
        }
    }

    /// Applies one state change from the daemon. Returns false when the open chat session
    /// missed something and its history must be read again.
    pub fn apply_event(&mut self, event: Event) -> bool {
        if event.seq <= self.seq {
            return true;
        }
        self.seq = event.seq;
        match event.kind {
            EventKind::Run { run } => self.upsert(run),
            EventKind::RunRemoved { id } => self.removed(&id),
            EventKind::Clients { attached } => self.link = Link::Connected { clients: attached },
            EventKind::Gpus {
                source,
                unavailable,
                gpus,
            } => self.gpus_sampled(event.ts, source, unavailable, gpus),
            EventKind::Sweep { sweep } => match self.sweeps.iter_mut().find(|s| s.id == sweep.id) {
                Some(existing) => *existing = sweep,
                None => self.sweeps.push(sweep),
            },
            EventKind::Alert { alert } => self.alerts.upsert(alert),
            EventKind::Recipe { recipe } => self.models.upsert_recipe(recipe),
            EventKind::RecipeRemoved { name } => self.models.remove_recipe(&name),
            EventKind::Model { model } => self.models.upsert(model),
            EventKind::Serving { model, stats } => self.models.serving(&model, stats),
            EventKind::Metrics { run, trend, .. } => {
                if let Some(trend) = trend {
                    self.charts.sparks.insert(run.clone(), trend);
                }
                let selected = self.selected_run().map(|r| r.id.clone());
                self.charts.touched(&run, selected.as_deref());
            }
            EventKind::Approval { approval } => self.agent.approval(approval),
            EventKind::Wild { wild } => {
                if let Some((notice, failed)) = self.agent.wild(wild) {
                    self.say(notice, failed);
                }
            }
            EventKind::File { change } => {
                // Said in the status line like any notice: the next key clears it.
                let path = change.path.display().to_string();
                let path = crate::sanitize::line(&path);
                let (added, removed) = (change.added, change.removed);
                self.say(format!("wrote {path} (+{added} −{removed})"), false);
            }
            chat => return self.chat.apply(&chat),
        }
        true
    }

    /// Takes a GPU sample and extends each GPU's utilisation history.
    pub fn gpus_sampled(
        &mut self,
        ts: i64,
        source: GpuSourceKind,
        unavailable: Option<String>,
        gpus: Vec<reagent::gpu::GpuInfo>,
    ) {
        let history = &mut self.gpus.history;
        history.resize_with(gpus.len(), Vec::new);
        for (samples, gpu) in history.iter_mut().zip(&gpus) {
            if samples.len() >= GPU_HISTORY {
                samples.remove(0);
            }
            samples.push(gpu.util_pct.map_or(0, |u| u.min(100) as u8));
        }
        self.gpus.source = source;
        self.gpus.unavailable = unavailable;
        self.gpus.gpus = gpus;
        self.gpus.ts = ts;
    }

    fn upsert(&mut self, run: RunInfo) {
        let in_pane = self.pane.as_ref().is_some_and(|pane| pane.run == run.id);
        if in_pane && run.status.is_terminal() && self.mode == Mode::Input {
            self.mode = Mode::Normal;
            let how = run.reason.clone().unwrap_or_else(|| run.status.to_string());
            self.say(
                format!("{} ended: {how}", run.label()),
                run.status != RunStatus::Finished,
            );
        }
        if let Some(pane) = self.pane.as_mut().filter(|pane| pane.run == run.id) {
            // Another client took the size: this one takes it back when it next types.
            if pane
                .asked
                .is_some_and(|asked| asked != (run.cols, run.rows))
            {
                pane.asked = None;
            }
            let (rows, cols) = pane.parser.screen().size();
            if (rows, cols) != (run.rows, run.cols) {
                pane.parser
                    .screen_mut()
                    .set_size(run.rows.max(1), run.cols.max(1));
            }
        }
        match self.runs.iter_mut().find(|r| r.id == run.id) {
            Some(existing) => *existing = run,
            None => self.runs.push(run),
        }
    }

    /// Forgets a removed run everywhere it shows: the list (the selection stays on the run it
    /// was on, or moves to the next), the pane, the charts and the alerts.
    fn removed(&mut self, id: &str) {
        let selected = self
            .selected_run()
            .map(|run| run.id.clone())
            .filter(|selected| selected != id);
        self.runs.retain(|run| run.id != id);
        self.reselect(selected.as_deref());
        if self.pane.as_ref().is_some_and(|pane| pane.run == id) {
            self.pane = None;
            if self.mode == Mode::Input {
                self.mode = Mode::Normal;
            }
            if self.focus == Focus::Pane {
                self.focus = Focus::Runs;
            }
        }
        self.charts.marked.retain(|run| run != id);
        self.charts.data.remove(id);
        self.charts.sparks.remove(id);
        let alerts = &mut self.alerts;
        alerts.alerts.retain(|alert| alert.run != id);
        alerts.selected = alerts.selected.min(alerts.alerts.len().saturating_sub(1));
    }

    /// A run this client just started: list it (its event may come later) and select it.
    pub fn started(&mut self, run: RunInfo) {
        let id = run.id.clone();
        if !self.runs.iter().any(|r| r.id == id) {
            self.runs.push(run);
        }
        self.reselect(Some(&id));
        self.focus = Focus::Runs;
    }

    fn reselect(&mut self, id: Option<&str>) {
        self.selected = id
            .and_then(|id| self.runs.iter().position(|r| r.id == id))
            .unwrap_or(self.selected)
            .min(self.runs.len().saturating_sub(1));
    }

    /// Shows a run in the pane (the caller asks the daemon to attach).
    pub fn open_pane(&mut self, run: &RunInfo) {
        if self.pane.as_ref().is_none_or(|pane| pane.run != run.id) {
            self.pane = Some(PaneView::new(run));
        }
    }

    /// Applies an attach reply: replays `history` (the log's bytes just before the screen's
    /// offset) into the scrollback, paints the screen, then the output that overtook the
    /// reply. Returns false when the pane must be re-attached.
    ///
    /// The snapshot is painted over the replay because it is exact where a replay from the
    /// middle of a log is not (modes set before the history began).
    pub fn attached(&mut self, attached: Attached, history: &[u8]) -> bool {
        let Some(pane) = self
            .pane
            .as_mut()
            .filter(|pane| pane.run == attached.run.id)
        else {
            return true;
        };
        pane.parser = vt100::Parser::new(
            attached.run.rows.max(1),
            attached.run.cols.max(1),
            PANE_SCROLLBACK,
        );
        pane.parser.process(history);
        pane.parser.process(&attached.screen.0);
        pane.offset = Some(attached.offset);
        pane.scroll = 0;
        let pending = std::mem::take(&mut pane.pending);
        let mut whole = true;
        for output in pending {
            whole &= pane.feed(output);
        }
        self.upsert(attached.run);
        whole
    }

    /// Applies output; returns false when bytes were missed and the pane needs re-attaching.
    pub fn output(&mut self, output: Output) -> bool {
        match self.pane.as_mut() {
            Some(pane) if pane.run == output.run => pane.feed(output),
            _ => true,
        }
    }

    /// Forgets the pane's screen so the next attach repaints it (after a resync).
    pub fn reset_pane(&mut self) {
        if let Some(pane) = self.pane.as_mut() {
            pane.offset = None;
            pane.pending.clear();
        }
    }

    /// Sets the status-line message.
    pub fn say(&mut self, text: impl Into<String>, error: bool) {
        self.flash = Some(Flash {
            text: text.into(),
            error,
        });
    }
}
