//! The launch state machine and GPU placement, IO-free like the queue's plan: the driver
//! (`launch.rs`) reports what it saw, and these decide what that means.

use reagent::model::{GpuSelect, ModelInfo, ModelState};

/// Moves `model` to `to`, or says why it cannot go there (a model that ended never runs
/// again; a ready model does not go back to launching). Keeps `progress`, `ready_at` and
/// `ended_at` in step with the state.
pub fn advance(model: &mut ModelInfo, to: ModelState, now: i64) -> Result<(), String> {
    use ModelState::{
        Cancelled, CheckingStability, Evicting, Failed, Launching, Ready, Requested, Stopped,
        WaitingHealth, WaitingLock,
    };
    let allowed = match model.state {
        Requested | WaitingLock => {
            matches!(to, WaitingLock | Evicting | Launching | Failed | Cancelled)
        }
        Evicting => matches!(to, Launching | Failed | Cancelled),
        Launching => matches!(to, CheckingStability | Failed | Cancelled),
        CheckingStability => matches!(to, WaitingHealth | Failed | Cancelled),
        WaitingHealth => matches!(to, Ready | Failed | Cancelled),
        Ready => matches!(to, Stopped | Failed),
        Stopped | Failed | Cancelled => false,
    };
    if !allowed {
        return Err(format!(
            "model {} cannot go from {} to {to}",
            model.name, model.state
        ));
    }
    model.state = to;
    model.progress = to.progress();
    if to == Ready {
        model.ready_at = Some(now);
    }
    if to.is_terminal() {
        model.ended_at = Some(now);
        model.progress = if to == Stopped { 100 } else { 0 };
    }
    Ok(())
}

/// One GPU as placement sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuFacts {
    /// Its index.
    pub index: u32,
    /// Memory installed, MiB.
    pub total_mib: u64,
    /// Memory used by anything that is not a model reagent placed (other processes, the
    /// driver), MiB.
    pub other_mib: u64,
    /// The training run the queue handed it to, by label: never evicted.
    pub training: Option<String>,
    /// The models placed on it.
    pub models: Vec<Holder>,
}

/// A model holding (or launching onto) a GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    /// The model's name.
    pub name: String,
    /// Memory it takes, MiB.
    pub needs_mib: u64,
    /// When it was last used; the oldest goes first.
    pub last_used: i64,
    /// Still launching: it cannot be evicted, only waited for (or preempted).
    pub launching: bool,
}

/// Where a launch goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// These GPUs have room now (empty: a CPU server).
    Fits(Vec<u32>),
    /// These GPUs have room once these ready models stop (least recently used first).
    Evict {
        /// The GPUs picked.
        gpus: Vec<u32>,
        /// The models to stop.
        victims: Vec<String>,
    },
    /// Other launches hold what this one needs: wait for them (or preempt them).
    Blocked {
        /// The launches in the way.
        by: Vec<String>,
    },
    /// It cannot fit without stopping a training run, or at all.
    Impossible(String),
}

/// What one GPU would cost this launch.
#[derive(Debug, Clone)]
enum Cost {
    /// Room now; `spare` MiB left over after it.
    Free { spare: u64 },
    /// Room once these stop; `oldest` is when the most recent of them was last used.
    Evict {
        victims: Vec<String>,
        newest_use: i64,
    },
    /// Launches in the way.
    Blocked(Vec<String>),
    /// Never, and why.
    Never(String),
}

fn cost(gpu: &GpuFacts, needs_mib: u64) -> Cost {
    if let Some(run) = &gpu.training {
        return Cost::Never(format!(
            "GPU {} is held by training run {run}, which a model launch never stops",
            gpu.index
        ));
    }
    let claimed: u64 = gpu.models.iter().map(|m| m.needs_mib).sum();
    let free = (gpu.total_mib)
        .saturating_sub(gpu.other_mib)
        .saturating_sub(claimed);
    if free >= needs_mib {
        return Cost::Free {
            spare: free - needs_mib,
        };
    }
    let mut ready: Vec<&Holder> = gpu.models.iter().filter(|m| !m.launching).collect();
    ready.sort_by_key(|m| m.last_used);
    let mut freed = free;
    let mut victims = Vec::new();
    let mut newest_use = i64::MIN;
    for model in ready {
        freed += model.needs_mib;
        victims.push(model.name.clone());
        newest_use = newest_use.max(model.last_used);
        if freed >= needs_mib {
            return Cost::Evict {
                victims,
                newest_use,
            };
        }
    }
    let launching: Vec<String> = (gpu.models.iter())
        .filter(|m| m.launching)
        .map(|m| m.name.clone())
        .collect();
    if !launching.is_empty() {
        return Cost::Blocked(launching);
    }
    Cost::Never(format!(
        "GPU {} has {} MiB of {} MiB free even with every model on it stopped; the recipe needs {needs_mib} MiB",
        gpu.index,
        gpu.total_mib.saturating_sub(gpu.other_mib),
        gpu.total_mib
    ))
}

/// Picks GPUs for a launch needing `needs_mib` on each: GPUs with room first (the tightest
/// fit, keeping large holes for large models), then GPUs whose least recently used ready
/// models can make room. Training runs are never evicted; launches in flight are waited for.
pub fn place(want: &GpuSelect, needs_mib: u64, gpus: &[GpuFacts]) -> Placement {
    let wanted = want.count();
    if wanted == 0 {
        return Placement::Fits(Vec::new());
    }
    let candidates: Vec<&GpuFacts> = match want {
        GpuSelect::Ids(ids) => {
            let mut picked = Vec::new();
            for id in ids {
                match gpus.iter().find(|g| g.index == *id) {
                    Some(gpu) => picked.push(gpu),
                    None => {
                        return Placement::Impossible(format!(
                            "GPU {id} does not exist (this machine has {})",
                            count_gpus(gpus.len())
                        ));
                    }
                }
            }
            picked
        }
        GpuSelect::Count(_) => {
            if gpus.len() < wanted {
                return Placement::Impossible(format!(
                    "the recipe needs {wanted} GPU(s) and this machine has {}",
                    count_gpus(gpus.len())
                ));
            }
            gpus.iter().collect()
        }
    };
    let costs: Vec<(u32, Cost)> = (candidates.iter())
        .map(|gpu| (gpu.index, cost(gpu, needs_mib)))
        .collect();
    let chosen: Vec<&(u32, Cost)> = match want {
        GpuSelect::Ids(_) => costs.iter().collect(),
        GpuSelect::Count(_) => {
            let mut usable: Vec<&(u32, Cost)> = (costs.iter())
                .filter(|(_, c)| matches!(c, Cost::Free { .. } | Cost::Evict { .. }))
                .collect();
            usable.sort_by_key(|(index, c)| match c {
                Cost::Free { spare } => (0, *spare as i128, *index),
                Cost::Evict {
                    victims,
                    newest_use,
                } => (1 + victims.len() as i128, *newest_use as i128, *index),
                _ => (i128::MAX, 0, *index),
            });
            if usable.len() < wanted {
                return not_enough(&costs, wanted, usable.len());
            }
            usable.into_iter().take(wanted).collect()
        }
    };
    let mut victims: Vec<String> = Vec::new();
    let mut blocked: Vec<String> = Vec::new();
    for (_, c) in &chosen {
        match c {
            Cost::Free { .. } => {}
            Cost::Evict { victims: v, .. } => victims.extend(v.iter().cloned()),
            Cost::Blocked(by) => blocked.extend(by.iter().cloned()),
            Cost::Never(why) => return Placement::Impossible(why.clone()),
        }
    }
    if !blocked.is_empty() {
        return Placement::Blocked { by: dedup(blocked) };
    }
    let gpus: Vec<u32> = chosen.iter().map(|(index, _)| *index).collect();
    if victims.is_empty() {
        Placement::Fits(gpus)
    } else {
        Placement::Evict {
            gpus,
            victims: dedup(victims),
        }
    }
}

/// Why a count of GPUs cannot be had now: launches to wait for, else the reasons.
fn not_enough(costs: &[(u32, Cost)], wanted: usize, usable: usize) -> Placement {
    let blocked: Vec<String> = (costs.iter())
        .filter_map(|(_, c)| match c {
            Cost::Blocked(by) => Some(by.iter().cloned()),
            _ => None,
        })
        .flatten()
        .collect();
    if !blocked.is_empty() {
        return Placement::Blocked { by: dedup(blocked) };
    }
    let reasons: Vec<&str> = (costs.iter())
        .filter_map(|(_, c)| match c {
            Cost::Never(why) => Some(why.as_str()),
            _ => None,
        })
        .collect();
    Placement::Impossible(format!(
        "the recipe needs {wanted} GPU(s) and only {usable} can make room: {}",
        reasons.join("; ")
    ))
}

fn count_gpus(n: usize) -> String {
    match n {
        0 => "no GPUs".into(),
        1 => "GPU 0 only".into(),
        n => format!("GPUs 0 to {}", n - 1),
    }
}

fn dedup(mut names: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    names.retain(|name| seen.insert(name.clone()));
    names
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn gpu(index: u32, models: Vec<Holder>) -> GpuFacts {
        GpuFacts {
            index,
            total_mib: 80_000,
            other_mib: 1_000,
            training: None,
            models,
        }
    }

    fn holder(name: &str, needs_mib: u64, last_used: i64) -> Holder {
        Holder {
            name: name.into(),
            needs_mib,
            last_used,
            launching: false,
        }
    }

    fn model(state: ModelState) -> ModelInfo {
        ModelInfo::new("m", reagent::model::Backend::Command, 0).in_state(state)
    }

    #[test]
    fn a_launch_walks_the_states_with_their_progress() {
        let mut m = model(ModelState::Requested);
        let mut seen = vec![m.progress];
        for to in [
            ModelState::Launching,
            ModelState::CheckingStability,
            ModelState::WaitingHealth,
            ModelState::Ready,
        ] {
            advance(&mut m, to, 5).unwrap();
            seen.push(m.progress);
        }
        assert_eq!(seen, [0, 25, 25, 50, 100]);
        assert_eq!(m.ready_at, Some(5));
        advance(&mut m, ModelState::Stopped, 9).unwrap();
        assert_eq!(m.ended_at, Some(9));
    }

    #[test]
    fn what_ended_never_runs_again_and_ready_never_relaunches() {
        for end in [
            ModelState::Failed,
            ModelState::Cancelled,
            ModelState::Stopped,
        ] {
            let mut m = model(end);
            assert!(advance(&mut m, ModelState::Launching, 0).is_err());
            assert!(advance(&mut m, ModelState::Ready, 0).is_err());
        }
        let mut ready = model(ModelState::Ready);
        assert!(advance(&mut ready, ModelState::Launching, 0).is_err());
        assert!(advance(&mut ready, ModelState::Cancelled, 0).is_err());
        // Cancel works from every state before ready.
        for state in [
            ModelState::Requested,
            ModelState::WaitingLock,
            ModelState::Evicting,
            ModelState::Launching,
            ModelState::CheckingStability,
            ModelState::WaitingHealth,
        ] {
            advance(&mut model(state), ModelState::Cancelled, 0).unwrap();
            advance(&mut model(state), ModelState::Failed, 0).unwrap();
        }
    }

    #[test]
    fn a_cpu_recipe_fits_anywhere() {
        assert_eq!(place(&GpuSelect::Count(0), 0, &[]), Placement::Fits(vec![]));
    }

    #[test]
    fn the_tightest_gpu_with_room_is_picked() {
        let gpus = [gpu(0, vec![]), gpu(1, vec![holder("a", 40_000, 1)])];
        assert_eq!(
            place(&GpuSelect::Count(1), 30_000, &gpus),
            Placement::Fits(vec![1])
        );
        assert_eq!(
            place(&GpuSelect::Count(2), 30_000, &gpus),
            Placement::Fits(vec![1, 0])
        );
    }

    #[test]
    fn the_least_recently_used_model_is_evicted() {
        let gpus = [
            gpu(0, vec![holder("old", 60_000, 10)]),
            gpu(1, vec![holder("new", 60_000, 20)]),
        ];
        assert_eq!(
            place(&GpuSelect::Count(1), 60_000, &gpus),
            Placement::Evict {
                gpus: vec![0],
                victims: vec!["old".into()]
            }
        );
        // On a named GPU, whoever is there goes.
        assert_eq!(
            place(&GpuSelect::Ids(vec![1]), 60_000, &gpus),
            Placement::Evict {
                gpus: vec![1],
                victims: vec!["new".into()]
            }
        );
    }

    #[test]
    fn a_training_run_is_never_evicted() {
        let mut training = gpu(0, vec![]);
        training.training = Some("train-1".into());
        let gpus = [training.clone(), gpu(1, vec![holder("m", 60_000, 5)])];
        // The model on GPU 1 goes, not the training run on GPU 0.
        assert_eq!(
            place(&GpuSelect::Count(1), 60_000, &gpus),
            Placement::Evict {
                gpus: vec![1],
                victims: vec!["m".into()]
            }
        );
        // Needing both GPUs fits only by stopping training: refused, naming it.
        let Placement::Impossible(why) = place(&GpuSelect::Count(2), 60_000, &gpus) else {
            panic!("placed over a training run");
        };
        assert!(why.contains("training run train-1"), "{why}");
        let Placement::Impossible(why) = place(&GpuSelect::Ids(vec![0]), 1, &gpus) else {
            panic!("placed over a training run");
        };
        assert!(why.contains("train-1"), "{why}");
    }

    #[test]
    fn a_launch_in_flight_is_waited_for_not_evicted() {
        let mut launching = holder("busy", 60_000, 5);
        launching.launching = true;
        let gpus = [gpu(0, vec![launching])];
        assert_eq!(
            place(&GpuSelect::Count(1), 60_000, &gpus),
            Placement::Blocked {
                by: vec!["busy".into()]
            }
        );
        // A small model still fits beside it.
        assert_eq!(
            place(&GpuSelect::Count(1), 10_000, &gpus),
            Placement::Fits(vec![0])
        );
    }

    #[test]
    fn too_big_or_missing_gpus_are_impossible() {
        let gpus = [gpu(0, vec![])];
        assert!(matches!(
            place(&GpuSelect::Count(1), 90_000, &gpus),
            Placement::Impossible(why) if why.contains("needs 90000 MiB")
        ));
        assert!(matches!(
            place(&GpuSelect::Ids(vec![3]), 1, &gpus),
            Placement::Impossible(why) if why.contains("GPU 3 does not exist")
        ));
        assert!(matches!(
            place(&GpuSelect::Count(2), 1, &gpus),
            Placement::Impossible(why) if why.contains("needs 2 GPU(s)")
        ));
    }
}
