//! GPUs through NVML (`nvml-wrapper`), which loads the driver's library when opened: on a
//! machine without the driver, opening fails with the loader's reason and reagent says so.
//!
//! The device calls sit behind [`DeviceApi`] so that [`read_device`] — which call feeds which
//! field, and what an unsupported call leaves empty — is unit-tested with a fake device.

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::enums::device::UsedGpuMemory;
use reagent::gpu::{GpuInfo, GpuProcess, GpuSourceKind};

use super::GpuSource;

/// A failed device call, as NVML describes it ("not supported" and the like).
pub type CallResult<T> = Result<T, String>;

/// The device readings reagent uses; implemented for NVML's device and, in tests, a fake.
pub trait DeviceApi {
    /// Product name.
    fn name(&self) -> CallResult<String>;
    /// UUID.
    fn uuid(&self) -> CallResult<String>;
    /// GPU utilisation, percent.
    fn utilization(&self) -> CallResult<u32>;
    /// Memory (used, total), bytes.
    fn memory(&self) -> CallResult<(u64, u64)>;
    /// Temperature, °C.
    fn temperature(&self) -> CallResult<u32>;
    /// Power draw, milliwatts.
    fn power_mw(&self) -> CallResult<u32>;
    /// Enforced power limit, milliwatts.
    fn power_limit_mw(&self) -> CallResult<u32>;
    /// Fan 0 speed, percent.
    fn fan(&self) -> CallResult<u32>;
    /// (SM, memory) clocks, MHz.
    fn clocks(&self) -> CallResult<(u32, u32)>;
    /// Compute processes: pid and memory in bytes when known.
    fn processes(&self) -> CallResult<Vec<(u32, Option<u64>)>>;
}

const MIB: u64 = 1024 * 1024;

/// One GPU's readings from its device calls; a call that fails leaves its field empty, and
/// only a device without a name or memory reading is an error.
pub fn read_device(index: u32, device: &impl DeviceApi) -> CallResult<GpuInfo> {
    let (used, total) = device.memory()?;
    let (sm_clock_mhz, mem_clock_mhz) = device
        .clocks()
        .map_or((None, None), |(sm, mem)| (Some(sm), Some(mem)));
    let processes = device
        .processes()
        .unwrap_or_default()
        .into_iter()
        .map(|(pid, bytes)| GpuProcess {
            pid,
            used_mib: bytes.map(|b| b / MIB),
            run: None,
        })
        .collect();
    Ok(GpuInfo {
        index,
        name: device.name()?,
        uuid: device.uuid().unwrap_or_default(),
        fake: false,
        util_pct: device.utilization().ok(),
        mem_used_mib: used / MIB,
        mem_total_mib: total / MIB,
        temp_c: device.temperature().ok(),
        power_w: device.power_mw().ok().map(|mw| f64::from(mw) / 1000.0),
        power_limit_w: device
            .power_limit_mw()
            .ok()
            .map(|mw| f64::from(mw) / 1000.0),
        fan_pct: device.fan().ok(),
        sm_clock_mhz,
        mem_clock_mhz,
        processes,
        assigned_to: None,
        model: None,
    })
}

impl DeviceApi for nvml_wrapper::Device<'_> {
    fn name(&self) -> CallResult<String> {
        nvml_wrapper::Device::name(self).map_err(|e| e.to_string())
    }
    fn uuid(&self) -> CallResult<String> {
        nvml_wrapper::Device::uuid(self).map_err(|e| e.to_string())
    }
    fn utilization(&self) -> CallResult<u32> {
        self.utilization_rates()
            .map(|u| u.gpu)
            .map_err(|e| e.to_string())
    }
    fn memory(&self) -> CallResult<(u64, u64)> {
        self.memory_info()
            .map(|m| (m.used, m.total))
            .map_err(|e| e.to_string())
    }
    fn temperature(&self) -> CallResult<u32> {
        nvml_wrapper::Device::temperature(self, TemperatureSensor::Gpu).map_err(|e| e.to_string())
    }
    fn power_mw(&self) -> CallResult<u32> {
        self.power_usage().map_err(|e| e.to_string())
    }
    fn power_limit_mw(&self) -> CallResult<u32> {
        self.enforced_power_limit().map_err(|e| e.to_string())
    }
    fn fan(&self) -> CallResult<u32> {
        self.fan_speed(0).map_err(|e| e.to_string())
    }
    fn clocks(&self) -> CallResult<(u32, u32)> {
        let sm = self.clock_info(Clock::SM).map_err(|e| e.to_string())?;
        let mem = self.clock_info(Clock::Memory).map_err(|e| e.to_string())?;
        Ok((sm, mem))
    }
    fn processes(&self) -> CallResult<Vec<(u32, Option<u64>)>> {
        let processes = self
            .running_compute_processes()
            .map_err(|e| e.to_string())?;
        Ok(processes
            .into_iter()
            .map(|p| match p.used_gpu_memory {
                UsedGpuMemory::Used(bytes) => (p.pid, Some(bytes)),
                UsedGpuMemory::Unavailable => (p.pid, None),
            })
            .collect())
    }
}

/// The driver's GPUs, through NVML.
pub struct NvmlSource {
    nvml: Nvml,
}

impl NvmlSource {
    /// Loads NVML; the error is the loader's reason, for the user.
    pub fn open() -> Result<Self, String> {
        Nvml::init()
            .map(|nvml| Self { nvml })
            .map_err(|err| err.to_string())
    }
}

impl GpuSource for NvmlSource {
    fn kind(&self) -> GpuSourceKind {
        GpuSourceKind::Nvml
    }

    fn sample(&mut self) -> anyhow::Result<Vec<GpuInfo>> {
        let count = self.nvml.device_count()?;
        let mut gpus = Vec::new();
        for index in 0..count {
            let device = self.nvml.device_by_index(index)?;
            match read_device(index, &device) {
                Ok(gpu) => gpus.push(gpu),
                Err(err) => tracing::debug!("GPU {index} cannot be read: {err}"),
            }
        }
        Ok(gpus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device whose calls answer from fields; `None` means "not supported".
    #[derive(Default)]
    struct FakeDevice {
        util: Option<u32>,
        power_mw: Option<u32>,
        fan: Option<u32>,
        processes: Vec<(u32, Option<u64>)>,
        no_memory: bool,
    }

    fn unsupported<T>(value: Option<T>) -> CallResult<T> {
        value.ok_or_else(|| "the requested operation is not available on the target device".into())
    }

    impl DeviceApi for FakeDevice {
        fn name(&self) -> CallResult<String> {
            Ok("NVIDIA A100-SXM4-80GB".into())
        }
        fn uuid(&self) -> CallResult<String> {
            Ok("GPU-1234".into())
        }
        fn utilization(&self) -> CallResult<u32> {
            unsupported(self.util)
        }
        fn memory(&self) -> CallResult<(u64, u64)> {
            unsupported((!self.no_memory).then_some((12 * 1024 * MIB, 80 * 1024 * MIB)))
        }
        fn temperature(&self) -> CallResult<u32> {
            Ok(54)
        }
        fn power_mw(&self) -> CallResult<u32> {
            unsupported(self.power_mw)
        }
        fn power_limit_mw(&self) -> CallResult<u32> {
            Ok(400_000)
        }
        fn fan(&self) -> CallResult<u32> {
            unsupported(self.fan)
        }
        fn clocks(&self) -> CallResult<(u32, u32)> {
            Ok((1410, 1593))
        }
        fn processes(&self) -> CallResult<Vec<(u32, Option<u64>)>> {
            Ok(self.processes.clone())
        }
    }

    #[test]
    fn device_calls_map_to_fields_in_human_units() {
        let device = FakeDevice {
            util: Some(43),
            power_mw: Some(251_500),
            fan: Some(40),
            processes: vec![(4242, Some(2048 * MIB)), (77, None)],
            ..Default::default()
        };
        let gpu = read_device(3, &device).unwrap();
        assert_eq!(gpu.index, 3);
        assert_eq!(gpu.name, "NVIDIA A100-SXM4-80GB");
        assert!(!gpu.fake);
        assert_eq!(gpu.util_pct, Some(43));
        assert_eq!(
            (gpu.mem_used_mib, gpu.mem_total_mib),
            (12 * 1024, 80 * 1024)
        );
        assert_eq!(gpu.power_w, Some(251.5));
        assert_eq!(gpu.power_limit_w, Some(400.0));
        assert_eq!(
            (gpu.sm_clock_mhz, gpu.mem_clock_mhz),
            (Some(1410), Some(1593))
        );
        assert_eq!(gpu.processes[0].used_mib, Some(2048));
        assert_eq!(gpu.processes[1].used_mib, None);
    }

    #[test]
    fn unsupported_readings_stay_empty_and_no_memory_is_an_error() {
        let gpu = read_device(0, &FakeDevice::default()).unwrap();
        assert_eq!((gpu.util_pct, gpu.power_w, gpu.fan_pct), (None, None, None));
        assert_eq!(gpu.temp_c, Some(54));
        let broken = FakeDevice {
            no_memory: true,
            ..Default::default()
        };
        assert!(
            read_device(0, &broken)
                .unwrap_err()
                .contains("not available")
        );
    }

    #[test]
    fn without_a_driver_opening_fails_with_the_loaders_reason() {
        // This machine kind has no NVIDIA driver; on one that does, this test has nothing to say.
        if let Err(reason) = NvmlSource::open() {
            assert!(!reason.is_empty());
        }
    }
}
