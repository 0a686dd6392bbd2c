//! Who starts now: a pure function of the jobs, the GPUs and the sweeps' limits.
//!
//! Higher priority first, first come first served within a priority. A run asking for a
//! count of GPUs that cannot be met holds back later count requests (no overtaking: a big
//! request is not starved by a stream of small ones); one asking for exact GPUs reserves
//! them. A run that waits for its sweep's slot holds nothing back.

use std::collections::{HashMap, HashSet};

use reagent::gpu::{GpuInfo, join_ids};

use super::Job;

/// What the queue does with one waiting job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Launch it with these GPUs.
    Start {
        /// The run.
        run: String,
        /// GPUs handed to it (empty when it needs none).
        gpus: Vec<u32>,
    },
    /// It waits, for this reason.
    Wait {
        /// The run.
        run: String,
        /// Why, for people: `waiting for 1 GPU: 0 of 2 free`.
        reason: String,
    },
}

/// A sweep's name and how many of its runs may run at once (0 = no limit).
pub type Limits = HashMap<String, (String, u32)>;

/// Decides every waiting job. `labels` names runs in reasons; `free_below_mib` is the memory
/// under which a GPU no run holds counts as free; `held` are GPUs model servers hold, which
/// no training run is handed.
pub fn plan(
    jobs: &[Job],
    gpus: &[GpuInfo],
    free_below_mib: Option<u64>,
    limits: &Limits,
    labels: &HashMap<String, String>,
    held: &HashSet<u32>,
) -> Vec<Decision> {
    let label = |run: &str| labels.get(run).cloned().unwrap_or_else(|| run.to_string());
    let mut taken: HashSet<u32> = jobs
        .iter()
        .flat_map(|j| j.assigned.iter().copied())
        .chain(held.iter().copied())
        .collect();
    let mut active: HashMap<&str, u32> = HashMap::new();
    for job in jobs.iter().filter(|j| j.started) {
        if let Some(sweep) = &job.sweep {
            *active.entry(sweep).or_default() += 1;
        }
    }
    let busy_memory = |gpu: &GpuInfo| free_below_mib.is_some_and(|limit| gpu.mem_used_mib >= limit);
    let mut waiting: Vec<&Job> = jobs.iter().filter(|j| !j.started).collect();
    waiting.sort_by_key(|job| std::cmp::Reverse(job.priority));
    let mut blocked_by: Option<String> = None;
    let mut decisions = Vec::new();
    for job in waiting {
        let run = job.run.clone();
        if let Some(sweep) = &job.sweep
            && let Some((name, parallel)) = limits.get(sweep)
            && *parallel > 0
            && active.get(sweep.as_str()).copied().unwrap_or(0) >= *parallel
        {
            let reason = format!("waiting for a slot: sweep {name} runs {parallel} at once");
            decisions.push(Decision::Wait { run, reason });
            continue;
        }
        let wanted = job.request.describe();
        let free: Vec<u32> = gpus
            .iter()
            .filter(|g| !taken.contains(&g.index) && !busy_memory(g))
            .map(|g| g.index)
            .collect();
        let chosen = if !job.request.ids.is_empty() {
            let missing: Vec<u32> = job
                .request
                .ids
                .iter()
                .copied()
                .filter(|id| !free.contains(id))
                .collect();
            taken.extend(job.request.ids.iter().copied());
            if missing.is_empty() {
                Ok(job.request.ids.clone())
            } else {
                Err(format!(
                    "waiting for {wanted}: {} not free",
                    describe_missing(&missing, gpus)
                ))
            }
        } else if let Some(ahead) = &blocked_by
            && job.request.count > 0
        {
            Err(format!("waiting for {wanted}, behind {ahead}"))
        } else if free.len() >= job.request.count as usize {
            Ok(free[..job.request.count as usize].to_vec())
        } else {
            blocked_by = Some(label(&job.run));
            Err(if gpus.is_empty() {
                format!("waiting for {wanted}: no GPUs seen yet")
            } else {
                format!(
                    "waiting for {wanted}: {} of {} free",
                    free.len(),
                    gpus.len()
                )
            })
        };
        match chosen {
            Ok(ids) => {
                taken.extend(ids.iter().copied());
                if let Some(sweep) = &job.sweep {
                    *active.entry(sweep).or_default() += 1;
                }
                decisions.push(Decision::Start { run, gpus: ids });
            }
            Err(reason) => decisions.push(Decision::Wait { run, reason }),
        }
    }
    decisions
}

fn describe_missing(missing: &[u32], gpus: &[GpuInfo]) -> String {
    let absent: Vec<u32> = missing
        .iter()
        .copied()
        .filter(|id| !gpus.iter().any(|g| g.index == *id))
        .collect();
    if !gpus.is_empty() && !absent.is_empty() {
        return format!("GPU {} does not exist here", join_ids(&absent));
    }
    format!("GPU {}", join_ids(missing))
}

#[cfg(test)]
mod tests {
    use reagent::gpu::GpuRequest;

    use super::*;

    fn gpu(index: u32, used: u64) -> GpuInfo {
        GpuInfo {
            index,
            name: format!("Fake GPU {index}"),
            uuid: String::new(),
            fake: true,
            util_pct: None,
            mem_used_mib: used,
            mem_total_mib: 1000,
            temp_c: None,
            power_w: None,
            power_limit_w: None,
            fan_pct: None,
            sm_clock_mhz: None,
            mem_clock_mhz: None,
            processes: Vec::new(),
            assigned_to: None,
            model: None,
        }
    }

    fn job(run: &str, count: u32, priority: i32) -> Job {
        Job {
            run: run.into(),
            request: GpuRequest {
                count,
                ids: Vec::new(),
            },
            priority,
            retries_left: 0,
            sweep: None,
            started: false,
            assigned: Vec::new(),
        }
    }

    fn decide(jobs: &[Job], gpus: &[GpuInfo], free_below: Option<u64>) -> Vec<Decision> {
        plan(
            jobs,
            gpus,
            free_below,
            &Limits::new(),
            &HashMap::new(),
            &HashSet::new(),
        )
    }

    fn start(run: &str, gpus: &[u32]) -> Decision {
        Decision::Start {
            run: run.into(),
            gpus: gpus.to_vec(),
        }
    }

    #[test]
    fn distinct_gpus_first_come_first_served_then_the_rest_wait() {
        let gpus = [gpu(0, 0), gpu(1, 0)];
        let jobs = [job("a", 1, 0), job("b", 1, 0), job("c", 1, 0)];
        let decisions = decide(&jobs, &gpus, None);
        assert_eq!(decisions[0], start("a", &[0]));
        assert_eq!(decisions[1], start("b", &[1]));
        assert_eq!(
            decisions[2],
            Decision::Wait {
                run: "c".into(),
                reason: "waiting for 1 GPU: 0 of 2 free".into()
            }
        );
    }

    #[test]
    fn priority_goes_first_and_a_blocked_request_is_not_overtaken() {
        let gpus = [gpu(0, 0), gpu(1, 0)];
        let mut held = job("held", 1, 0);
        (held.started, held.assigned) = (true, vec![0]);
        let jobs = [
            held,
            job("big", 2, 0),
            job("small", 1, 0),
            job("urgent", 1, 5),
        ];
        let decisions = decide(&jobs, &gpus, None);
        assert_eq!(decisions[0], start("urgent", &[1]));
        assert!(matches!(&decisions[1], Decision::Wait { run, .. } if run == "big"));
        assert_eq!(
            decisions[2],
            Decision::Wait {
                run: "small".into(),
                reason: "waiting for 1 GPU, behind big".into()
            }
        );
    }

    #[test]
    fn exact_ids_memory_threshold_and_sweep_slots() {
        let gpus = [gpu(0, 900), gpu(1, 10), gpu(2, 10)];
        let mut exact = job("exact", 0, 0);
        exact.request.ids = vec![0, 2];
        let mut absent = job("absent", 0, 0);
        absent.request.ids = vec![7];
        let decisions = decide(&[exact.clone(), absent], &gpus, Some(500));
        assert_eq!(
            decisions[0],
            Decision::Wait {
                run: "exact".into(),
                reason: "waiting for GPUs 0,2: GPU 0 not free".into()
            }
        );
        assert!(
            matches!(&decisions[1], Decision::Wait { reason, .. } if reason.contains("does not exist"))
        );
        assert_eq!(decide(&[exact], &gpus, None)[0], start("exact", &[0, 2]));

        let mut limits = Limits::new();
        limits.insert("s".into(), ("lr".into(), 1));
        let mut a = job("a", 0, 0);
        a.sweep = Some("s".into());
        let mut b = a.clone();
        b.run = "b".into();
        let decisions = plan(
            &[a, b],
            &gpus,
            None,
            &limits,
            &HashMap::new(),
            &HashSet::new(),
        );
        assert_eq!(decisions[0], start("a", &[]));
        assert!(
            matches!(&decisions[1], Decision::Wait { reason, .. } if reason.contains("sweep lr runs 1 at once"))
        );
    }
}
