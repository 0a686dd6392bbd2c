//! Config and access: a broken config is refused with its file, line and key; the socket
//! refuses other users.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;

use common::{Env, wait_until};

#[test]
fn a_broken_config_names_file_line_and_key() {
    let env = Env::new();
    let config = env.path().join("config.toml");
    std::fs::write(&config, "[runs]\ncols = 200\nrows = \"tall\"\n").expect("write config");
    let out = env.run(&["runs"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{}:3:", config.display());
    assert!(
        stderr.contains(&expected) && stderr.contains("runs.rows"),
        "{stderr}"
    );
    assert!(
        !env.socket().exists(),
        "no daemon started on a broken config"
    );

    std::fs::write(&config, "[runs]\ncols = 120\n").expect("fix config");
    let id = env.start(&["true"]);
    assert_eq!(env.get(&id)["cols"], 120, "the config applies");
}

#[test]
fn a_peer_with_another_uid_is_refused() {
    if !rustix::process::getuid().is_root() {
        eprintln!("skipped: only root can connect as another user here");
        return;
    }
    let env = Env::new();
    env.ok(&["daemon", "start"]);
    // Open the way on purpose, so that only the daemon's own check stands.
    std::fs::set_permissions(env.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(env.socket(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let out = env
        .cmd(&["runs", "--json"])
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run as nobody");
    assert!(!out.status.success(), "another user's client was served");
    let log_dir = env.path().join("logs");
    wait_until("the refusal to be logged", || {
        std::fs::read_dir(&log_dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| {
                std::fs::read_to_string(entry.path()).is_ok_and(|log| log.contains("another user"))
            })
    });
    assert!(
        env.ok(&["runs"]).contains("ID"),
        "the owner is still served"
    );
}

#[test]
fn a_provider_url_or_header_that_cannot_work_stops_the_daemon_naming_file_line_and_key() {
    let env = Env::new();
    let config = env.path().join("config.toml");
    let provider = |base_url: &str| {
        format!("[providers.local]\nkind = \"openai\"\nbase_url = \"{base_url}\"\n")
    };
    let bad_header = format!(
        "{}\n[providers.local.headers]\n\"Bad Name\" = \"x\"\n",
        provider("http://127.0.0.1:9/v1")
    );
    let cases = [
        (provider("not a url"), 3, "providers.local.base_url"),
        (
            provider("ftp://example.com/v1"),
            3,
            "providers.local.base_url",
        ),
        (provider("http://[::1/v1"), 3, "providers.local.base_url"),
        (bad_header, 6, "providers.local.headers"),
    ];
    for (text, line, key) in cases {
        std::fs::write(&config, &text).expect("write config");
        let out = env.run(&["daemon", "start"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started with {text}");
        let place = format!("{}:{line}:", config.display());
        assert!(
            stderr.contains(&place) && stderr.contains(key),
            "{text}: {stderr}"
        );
        assert!(!env.socket().exists(), "no daemon on {text}");
    }
}

#[test]
fn a_config_that_is_a_folder_says_why_once() {
    let env = Env::new();
    std::fs::create_dir(env.path().join("config.toml")).expect("mkdir");
    let out = env.run(&["daemon", "start"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("Is a directory").count(), 1, "{stderr}");
}
