//! `reagent gpus` and `reagent queue`.

use std::process::ExitCode;

use reagent::gpu::{GpuInfo, GpuReport, ListGpus, ListQueue, QueueEntry, join_ids};

use super::{Ctx, aligned, print_json};
use crate::sanitize;

/// `reagent gpus [--json]`: the GPUs, or why there are none.
pub async fn gpus(ctx: &Ctx, json: bool) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let report = client.call(&ListGpus {}).await?;
    if json {
        print_json(&report)?;
    } else {
        print!("{}", describe(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// The report as people read it.
fn describe(report: &GpuReport) -> String {
    if let Some(reason) = &report.unavailable {
        return format!("GPUs unavailable: {}\n", sanitize::line(reason));
    }
    if report.gpus.is_empty() {
        return "no GPUs seen (yet)\n".into();
    }
    let mut rows = vec![
        ["GPU", "NAME", "UTIL", "MEMORY", "TEMP", "POWER", "RUNS"]
            .map(String::from)
            .to_vec(),
    ];
    for gpu in &report.gpus {
        rows.push(row(gpu));
    }
    aligned(&rows)
}

fn row(gpu: &GpuInfo) -> Vec<String> {
    let opt = |value: Option<String>| value.unwrap_or_else(|| "-".into());
    let mut runs: Vec<String> = gpu.processes.iter().filter_map(|p| p.run.clone()).collect();
    runs.extend(gpu.assigned_to.clone());
    runs.sort();
    runs.dedup();
    let name = if gpu.fake {
        format!("{} [FAKE]", gpu.name)
    } else {
        gpu.name.clone()
    };
    vec![
        gpu.index.to_string(),
        name,
        opt(gpu.util_pct.map(|u| format!("{u}%"))),
        format!("{}/{} MiB", gpu.mem_used_mib, gpu.mem_total_mib),
        opt(gpu.temp_c.map(|t| format!("{t}°C"))),
        match (gpu.power_w, gpu.power_limit_w) {
            (Some(w), Some(limit)) => format!("{w:.0}/{limit:.0} W"),
            (Some(w), None) => format!("{w:.0} W"),
            _ => "-".into(),
        },
        if runs.is_empty() {
            "-".into()
        } else {
            runs.join(",")
        },
    ]
}

/// `reagent queue [--json]`: waiting runs with why, and runs holding GPUs.
pub async fn queue(ctx: &Ctx, json: bool) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let entries = client.call(&ListQueue {}).await?;
    if json {
        print_json(&entries)?;
    } else if entries.is_empty() {
        println!("the queue is empty");
    } else {
        print!("{}", queue_table(&entries));
    }
    Ok(ExitCode::SUCCESS)
}

fn queue_table(entries: &[QueueEntry]) -> String {
    let mut rows = vec![
        ["RUN", "NAME", "PRIO", "WANTS", "STATE"]
            .map(String::from)
            .to_vec(),
    ];
    for entry in entries {
        let state = match &entry.waiting {
            Some(reason) => reason.clone(),
            None if entry.assigned.is_empty() => "running".into(),
            None => format!("running on GPU {}", join_ids(&entry.assigned)),
        };
        rows.push(vec![
            entry.run.clone(),
            entry.label.clone(),
            entry.priority.to_string(),
            entry.request.describe(),
            state,
        ]);
    }
    aligned(&rows)
}

#[cfg(test)]
mod tests {
    use reagent::gpu::{GpuRequest, GpuSourceKind};

    use super::*;

    #[test]
    fn no_gpus_print_the_reason_and_fake_ones_say_so() {
        let none = GpuReport::empty(GpuSourceKind::None, Some("no GPU driver: x".into()));
        assert_eq!(describe(&none), "GPUs unavailable: no GPU driver: x\n");
        let entries = [QueueEntry {
            run: "ab12cd34".into(),
            label: "train".into(),
            request: GpuRequest {
                count: 1,
                ids: Vec::new(),
            },
            priority: 0,
            retries_left: 0,
            sweep: None,
            assigned: Vec::new(),
            waiting: Some("waiting for 1 GPU: 0 of 2 free".into()),
        }];
        let table = queue_table(&entries);
        assert!(
            table
                .lines()
                .nth(1)
                .is_some_and(|l| l.ends_with("waiting for 1 GPU: 0 of 2 free")),
            "{table}"
        );
    }
}
