//! Small facts about other processes, shared by whoever needs them: a field of
//! `/proc/PID/stat`, and signalling a process group safely.

use rustix::process::{Pid, Signal, kill_process_group};

/// Field `index` after the command name of `/proc/PID/stat` (0 the state, 1 the parent, 2 the
/// process group). The command name sits in parentheses and may itself hold spaces and
/// parentheses, so the fields are counted from the last `)`.
pub fn stat_field(pid: u32, index: usize) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_field(&stat, index)
}

fn parse_stat_field(stat: &str, index: usize) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(index)?.parse().ok()
}

/// Signals process group `pgid`. Refuses 0 and 1: `kill(-1)` would signal every process.
pub fn signal_group(pgid: u32, signal: Signal) -> Result<(), String> {
    let pid = i32::try_from(pgid).ok().and_then(Pid::from_raw);
    let Some(pid) = pid.filter(|pid| pid.as_raw_nonzero().get() > 1) else {
        return Err(format!("refusing to signal process group {pgid}"));
    };
    kill_process_group(pid, signal)
        .map_err(|err| format!("signal {signal:?} to process group {pgid}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_past_a_command_name_with_spaces() {
        assert_eq!(
            parse_stat_field("42 (my (odd) prog) S 7 42 42 0", 1),
            Some(7)
        );
        assert_eq!(
            parse_stat_field("42 (my (odd) prog) S 7 40 42 0", 2),
            Some(40)
        );
        assert_eq!(parse_stat_field("garbage", 1), None);
        assert!(stat_field(std::process::id(), 1).is_some_and(|p| p > 0));
        assert_eq!(stat_field(u32::MAX, 1), None);
    }

    #[test]
    fn groups_0_and_1_are_never_signalled() {
        assert!(signal_group(0, Signal::TERM).is_err());
        assert!(signal_group(1, Signal::TERM).is_err());
    }
}
