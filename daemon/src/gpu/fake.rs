//! Fake GPUs for demos and tests on machines without any (`REAGENT_FAKE_GPUS=N`). Their
//! names say "Fake GPU" and each carries `fake: true`, so no view can pass them off as real.

use reagent::gpu::{GpuInfo, GpuSourceKind};

use super::GpuSource;

/// N made-up GPUs whose readings drift gently from sample to sample.
pub struct FakeSource {
    count: u32,
    tick: u32,
}

impl FakeSource {
    /// `count` fake GPUs.
    pub fn new(count: u32) -> Self {
        Self { count, tick: 0 }
    }
}

/// 80 GiB, as a large datacenter card.
const TOTAL_MIB: u64 = 81_920;

impl GpuSource for FakeSource {
    fn kind(&self) -> GpuSourceKind {
        GpuSourceKind::Fake
    }

    fn sample(&mut self) -> anyhow::Result<Vec<GpuInfo>> {
        self.tick = self.tick.wrapping_add(1);
        Ok((0..self.count)
            .map(|index| {
                // A triangle wave per GPU, phase-shifted, so sparklines have something to draw.
                let phase = (self.tick + index * 13) % 40;
                let util = if phase < 20 {
                    phase * 5
                } else {
                    (40 - phase) * 5
                };
                GpuInfo {
                    index,
                    name: format!("Fake GPU {index}"),
                    uuid: format!("GPU-fake-{index:04}"),
                    fake: true,
                    util_pct: Some(util),
                    mem_used_mib: 512 + u64::from(util) * 100,
                    mem_total_mib: TOTAL_MIB,
                    temp_c: Some(35 + util / 3),
                    power_w: Some(60.0 + f64::from(util) * 2.4),
                    power_limit_w: Some(300.0),
                    fan_pct: Some(30 + util / 4),
                    sm_clock_mhz: Some(1410),
                    mem_clock_mhz: Some(1593),
                    processes: Vec::new(),
                    assigned_to: None,
                    model: None,
                }
            })
            .collect())
    }
}
