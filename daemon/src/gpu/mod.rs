//! GPU sampling: a [`GpuSource`] (NVML, `nvidia-smi`, or fake) read once a second, its compute
//! processes mapped to reagent runs, the result kept in [`GpuBoard`] with a short history and
//! broadcast as an ephemeral `gpus` event when it changed.
//!
//! Which source: `REAGENT_FAKE_GPUS=N` gives N fake GPUs (named fake everywhere); otherwise
//! NVML, loaded at run time; when that fails, `nvidia-smi` if it is on `PATH`; else none, and
//! the reason NVML gave is logged once and shown by `reagent gpus` and the cockpit.

pub mod fake;
pub(crate) mod nvml;
pub(crate) mod procs;
pub(crate) mod sampler;
pub(crate) mod smi;

use std::collections::VecDeque;

use reagent::gpu::{GpuInfo, GpuReport, GpuSourceKind};

/// Anything that can read the machine's GPUs.
pub trait GpuSource: Send {
    /// Which kind of source this is.
    fn kind(&self) -> GpuSourceKind;
    /// Reads every GPU now. Processes come back with `run: None`; the sampler maps them.
    fn sample(&mut self) -> anyhow::Result<Vec<GpuInfo>>;
}

/// The environment variable that makes fake GPUs.
pub const FAKE_ENV: &str = "REAGENT_FAKE_GPUS";

/// Picks the source for this machine, or says why there is none.
pub fn open_source() -> (Option<Box<dyn GpuSource>>, Option<String>) {
    if let Ok(text) = std::env::var(FAKE_ENV) {
        return match text.trim().parse::<u32>() {
            Ok(count) if count <= 64 => (Some(Box::new(fake::FakeSource::new(count))), None),
            _ => (
                None,
                Some(format!(
                    "{FAKE_ENV}={text:?} is not a GPU count from 0 to 64"
                )),
            ),
        };
    }
    let nvml_error = match nvml::NvmlSource::open() {
        Ok(source) => return (Some(Box::new(source)), None),
        Err(err) => err,
    };
    if let Some(smi) = smi::SmiSource::find() {
        tracing::info!("NVML is unavailable ({nvml_error}); reading GPUs through nvidia-smi");
        return (Some(Box::new(smi)), None);
    }
    (
        None,
        Some(format!(
            "no GPU driver: NVML cannot be loaded ({nvml_error}) and nvidia-smi is not on PATH"
        )),
    )
}

/// The latest sample and a short history, as the daemon keeps them (inside its state lock).
pub struct GpuBoard {
    /// The last sample and why there is none.
    pub report: GpuReport,
    history: Vec<VecDeque<u8>>,
    capacity: usize,
}

impl GpuBoard {
    /// A board with no sample yet.
    pub fn new(source: GpuSourceKind, unavailable: Option<String>, capacity: usize) -> Self {
        Self {
            report: GpuReport::empty(source, unavailable),
            history: Vec::new(),
            capacity: capacity.max(1),
        }
    }

    /// Records a sample; returns whether anything a client shows changed.
    pub fn record(&mut self, ts: i64, gpus: Vec<GpuInfo>) -> bool {
        self.history.resize_with(gpus.len(), VecDeque::new);
        for (history, gpu) in self.history.iter_mut().zip(&gpus) {
            if history.len() == self.capacity {
                history.pop_front();
            }
            history.push_back(gpu.util_pct.map_or(0, |u| u.min(100) as u8));
        }
        let changed = gpus != self.report.gpus;
        self.report.gpus = gpus;
        self.report.ts = ts;
        changed
    }

    /// The report with its history, for `gpus.list` and snapshots.
    pub fn full_report(&self) -> GpuReport {
        GpuReport {
            history: self
                .history
                .iter()
                .map(|h| h.iter().copied().collect())
                .collect(),
            ..self.report.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_keeps_a_bounded_history_and_reports_changes() {
        let mut board = GpuBoard::new(GpuSourceKind::Fake, None, 3);
        let mut source = fake::FakeSource::new(2);
        let first = source.sample().unwrap();
        assert!(board.record(1, first.clone()));
        assert!(!board.record(2, first));
        for ts in 3..10 {
            board.record(ts, source.sample().unwrap());
        }
        let report = board.full_report();
        assert_eq!(report.history.len(), 2);
        assert_eq!(report.history[0].len(), 3);
        assert_eq!(report.ts, 9);
    }
}
