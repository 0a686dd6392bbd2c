//! GPUs through `nvidia-smi`'s CSV query, for machines where NVML cannot be loaded but the
//! command exists. Parsing is separate from running it, and tested on captured output.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use anyhow::Context as _;
use reagent::gpu::{GpuInfo, GpuProcess, GpuSourceKind};

use super::GpuSource;

/// The fields asked for, in the order [`parse_gpus`] reads them.
pub const GPU_FIELDS: &str = "index,name,uuid,utilization.gpu,memory.used,memory.total,\
temperature.gpu,power.draw,power.limit,fan.speed,clocks.sm,clocks.mem";
/// The per-process fields, in the order [`parse_processes`] reads them.
pub const APP_FIELDS: &str = "gpu_uuid,pid,used_memory";

/// `nvidia-smi` found on `PATH`.
pub struct SmiSource {
    program: PathBuf,
}

impl SmiSource {
    /// Finds `nvidia-smi` on `PATH`.
    pub fn find() -> Option<Self> {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join("nvidia-smi"))
            .find(|candidate| candidate.is_file())
            .map(|program| Self { program })
    }

    fn query(&self, what: &str, fields: &str) -> anyhow::Result<String> {
        let output = Command::new(&self.program)
            .arg(format!("--query-{what}={fields}"))
            .arg("--format=csv,noheader,nounits")
            .output()
            .with_context(|| format!("cannot run {}", self.program.display()))?;
        anyhow::ensure!(
            output.status.success(),
            "nvidia-smi failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl GpuSource for SmiSource {
    fn kind(&self) -> GpuSourceKind {
        GpuSourceKind::NvidiaSmi
    }

    fn sample(&mut self) -> anyhow::Result<Vec<GpuInfo>> {
        let mut gpus = parse_gpus(&self.query("gpu", GPU_FIELDS)?)?;
        // Process listing is optional: some drivers refuse it without root.
        if let Ok(text) = self.query("compute-apps", APP_FIELDS) {
            let mut by_uuid = parse_processes(&text);
            for gpu in &mut gpus {
                gpu.processes = by_uuid.remove(&gpu.uuid).unwrap_or_default();
            }
        }
        Ok(gpus)
    }
}

/// A number, or `None` for `[N/A]`, `[Not Supported]` and the like.
fn number<T: std::str::FromStr>(field: &str) -> Option<T> {
    field.trim().parse().ok()
}

/// Parses `--query-gpu=GPU_FIELDS --format=csv,noheader,nounits` output.
pub fn parse_gpus(text: &str) -> anyhow::Result<Vec<GpuInfo>> {
    let mut gpus = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        anyhow::ensure!(
            fields.len() == 12,
            "nvidia-smi printed {} fields where 12 were asked for: {line:?}",
            fields.len()
        );
        let index = number(fields[0]).with_context(|| format!("bad GPU index in {line:?}"))?;
        gpus.push(GpuInfo {
            index,
            name: fields[1].to_string(),
            uuid: fields[2].to_string(),
            fake: false,
            util_pct: number(fields[3]),
            mem_used_mib: number(fields[4]).unwrap_or(0),
            mem_total_mib: number(fields[5]).unwrap_or(0),
            temp_c: number(fields[6]),
            power_w: number(fields[7]),
            power_limit_w: number(fields[8]),
            fan_pct: number(fields[9]),
            sm_clock_mhz: number(fields[10]),
            mem_clock_mhz: number(fields[11]),
            processes: Vec::new(),
            assigned_to: None,
            model: None,
        });
    }
    Ok(gpus)
}

/// Parses `--query-compute-apps=APP_FIELDS` output into processes by GPU UUID.
pub fn parse_processes(text: &str) -> HashMap<String, Vec<GpuProcess>> {
    let mut by_uuid: HashMap<String, Vec<GpuProcess>> = HashMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if let [uuid, pid, used] = fields[..]
            && let Some(pid) = number(pid)
        {
            by_uuid
                .entry(uuid.to_string())
                .or_default()
                .push(GpuProcess {
                    pid,
                    used_mib: number(used),
                    run: None,
                });
        }
    }
    by_uuid
}

#[cfg(test)]
mod tests {
    use super::*;

    const GPUS: &str = "\
0, NVIDIA A100-SXM4-80GB, GPU-7f3c1b2a-0000-1111-2222-333344445555, 43, 12288, 81920, 54, 251.37, 400.00, [N/A], 1410, 1593
1, NVIDIA A100-SXM4-80GB, GPU-8e4d2c3b-0000-1111-2222-333344445555, 0, 4, 81920, 31, 61.02, 400.00, [N/A], 210, 1593
";
    const APPS: &str = "\
GPU-7f3c1b2a-0000-1111-2222-333344445555, 4242, 12000
GPU-7f3c1b2a-0000-1111-2222-333344445555, 4250, [N/A]
";

    #[test]
    fn captured_csv_parses_with_missing_readings_left_empty() {
        let gpus = parse_gpus(GPUS).unwrap();
        assert_eq!(gpus.len(), 2);
        let a = &gpus[0];
        assert_eq!((a.index, a.name.as_str()), (0, "NVIDIA A100-SXM4-80GB"));
        assert_eq!(a.util_pct, Some(43));
        assert_eq!((a.mem_used_mib, a.mem_total_mib), (12288, 81920));
        assert_eq!(a.power_w, Some(251.37));
        assert_eq!(a.fan_pct, None, "[N/A] fan");
        assert_eq!(gpus[1].sm_clock_mhz, Some(210));
        let apps = parse_processes(APPS);
        let procs = &apps["GPU-7f3c1b2a-0000-1111-2222-333344445555"];
        assert_eq!(procs.len(), 2);
        assert_eq!((procs[0].pid, procs[0].used_mib), (4242, Some(12000)));
        assert_eq!(procs[1].used_mib, None);
    }

    #[test]
    fn a_short_line_is_an_error_naming_it() {
        let err = parse_gpus("0, A100, GPU-1\n").unwrap_err().to_string();
        assert!(err.contains("3 fields"), "{err}");
    }
}
