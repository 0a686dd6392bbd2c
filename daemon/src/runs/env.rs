//! A job's environment. The daemon builds it whole and writes it into the run's `spec.json`
//! (0600); the supervisor starts the job from an empty environment with exactly that.
//!
//! The daemon's own environment is never the base: it holds the LLM providers' keys and the
//! notifiers' webhook URLs and tokens, which would reach every job, its log, every attached
//! client and any LLM shown its output. The rules, in order:
//!
//! 1. The base is the environment of the client that submitted the run, sent with the
//!    request as pueue does, so a job runs as if started from the user's shell. A client
//!    that sends none (an old one, a script speaking JSON-RPC) gets the daemon's [`MINIMAL`]
//!    variables instead, and those `pass_env` names.
//! 2. Every variable the daemon reads a secret from ([`Config::secret_vars`]) is removed
//!    from the base, unless the run names it in `pass_env`.
//! 3. `TERM` and `REAGENT_METRICS_FILE` are removed from the base: the job's terminal is
//!    reagent's PTY, not the client's (the supervisor sets `xterm-256color`), and each run
//!    has its own metrics file.
//! 4. The run's own `--env` is added last, replacing any base variable of the same name (a
//!    secret's name included: a value the user typed is theirs to give).

use reagent::config::Config;
use reagent::run::RunSpec;

/// What a job gets of the daemon's environment when its client sent none: enough to find
/// programs, a home and a language, and never a secret.
pub const MINIMAL: [&str; 4] = ["PATH", "HOME", "USER", "LANG"];

/// Variables the base never passes on, because the run's terminal and metrics are its own.
const REPLACED: [&str; 2] = ["TERM", crate::metrics::ENV];

/// The whole environment of a run's job, or which variable is malformed.
pub fn for_run(config: &Config, spec: &RunSpec) -> Result<Vec<(String, String)>, String> {
    let base = match &spec.client_env {
        Some(env) => {
            check_all(env).map_err(|why| format!("`client_env`: {why}"))?;
            env.clone()
        }
        None => from_daemon(&spec.pass_env),
    };
    check_all(&spec.env).map_err(|why| format!("`env`: {why}"))?;
    if let Some(name) = spec.pass_env.iter().find(|name| !valid_name(name)) {
        return Err(format!("`pass_env`: `{name}` is not a valid variable name"));
    }
    Ok(build(
        base,
        &config.secret_vars(),
        &spec.pass_env,
        &spec.env,
    ))
}

/// The daemon's own [`MINIMAL`] variables, and those `pass` names, that are set.
pub fn from_daemon(pass: &[String]) -> Vec<(String, String)> {
    let names = MINIMAL
        .iter()
        .copied()
        .chain(pass.iter().map(String::as_str));
    names
        .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)))
        .collect()
}

/// Rules 2 to 4 of the module, on a base already chosen.
fn build(
    base: Vec<(String, String)>,
    secrets: &[String],
    pass: &[String],
    own: &[(String, String)],
) -> Vec<(String, String)> {
    let kept = base.into_iter().filter(|(key, _)| {
        let secret = secrets.contains(key) && !pass.contains(key);
        let replaced = REPLACED.contains(&key.as_str()) || own.iter().any(|(k, _)| k == key);
        !secret && !replaced
    });
    kept.chain(own.iter().cloned()).collect()
}

fn check_all(env: &[(String, String)]) -> Result<(), String> {
    for (key, value) in env {
        if !valid_name(key) {
            return Err(format!("`{key}` is not a valid variable name"));
        }
        if value.contains('\0') {
            return Err(format!("the value of `{key}` holds a NUL byte"));
        }
    }
    Ok(())
}

/// Whether `exec` can pass the name: not empty, no `=` (which ends a name) and no NUL.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['=', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn names(env: &[(String, String)]) -> Vec<&str> {
        env.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn secrets_leave_the_clients_environment_unless_passed() {
        let base = vars(&[
            ("PATH", "/usr/bin"),
            ("OPENAI_API_KEY", "sk-1"),
            ("HOOK", "https://hooks"),
            ("MINE", "1"),
        ]);
        let secrets = ["HOOK".to_string(), "OPENAI_API_KEY".to_string()];
        let env = build(base.clone(), &secrets, &[], &[]);
        assert_eq!(names(&env), ["PATH", "MINE"]);
        let env = build(base, &secrets, &["OPENAI_API_KEY".into()], &[]);
        assert_eq!(names(&env), ["PATH", "OPENAI_API_KEY", "MINE"]);
    }

    #[test]
    fn the_runs_own_env_wins_and_term_and_metrics_are_the_runs() {
        let base = vars(&[
            ("TERM", "xterm-kitty"),
            ("REAGENT_METRICS_FILE", "/other/run"),
            ("A", "base"),
            ("HOME", "/home/u"),
        ]);
        let own = vars(&[("A", "mine"), ("OPENAI_API_KEY", "typed")]);
        let env = build(base, &["OPENAI_API_KEY".into()], &[], &own);
        assert_eq!(
            env,
            vars(&[
                ("HOME", "/home/u"),
                ("A", "mine"),
                ("OPENAI_API_KEY", "typed")
            ])
        );
    }

    #[test]
    fn a_client_without_an_environment_gets_the_daemons_minimal_one() {
        let spec = RunSpec {
            command: vec!["env".into()],
            ..RunSpec::default()
        };
        let env = for_run(&Config::default(), &spec).unwrap();
        assert!(
            env.iter().all(|(k, _)| MINIMAL.contains(&k.as_str())),
            "{env:?}"
        );
        assert!(env.iter().any(|(k, _)| k == "PATH"), "{env:?}");
    }

    #[test]
    fn malformed_variables_are_named() {
        let mut spec = RunSpec {
            command: vec!["env".into()],
            client_env: Some(vars(&[("A=B", "1")])),
            ..RunSpec::default()
        };
        let err = for_run(&Config::default(), &spec).unwrap_err();
        assert!(err.starts_with("`client_env`: `A=B`"), "{err}");
        spec.client_env = Some(vars(&[("A", "x\0y")]));
        assert!(
            for_run(&Config::default(), &spec)
                .unwrap_err()
                .contains("NUL")
        );
        spec.client_env = None;
        spec.env = vars(&[("", "1")]);
        assert!(
            for_run(&Config::default(), &spec)
                .unwrap_err()
                .starts_with("`env`:")
        );
        spec.env = Vec::new();
        spec.pass_env = vec!["X=Y".into()];
        assert!(
            for_run(&Config::default(), &spec)
                .unwrap_err()
                .starts_with("`pass_env`:")
        );
    }
}
