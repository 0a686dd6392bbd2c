//! Property test over request parsing and dispatch: any line, well-formed, mutated or
//! garbage, gets exactly one well-formed reply, or none when it is a notification, and never
//! a panic. Bounded to a few hundred cases so it runs in seconds.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use reagent::config::Config;
use reagent::paths::Paths;
use reagent::protocol::{Request, parse_request};
use serde_json::Value;

use super::connection::handle_line;
use crate::daemon::Daemon;
use crate::handlers::{self, Conn};
use crate::outbox::Outbox;

/// Methods that start processes or reach the network; the test parses them but does not run
/// them.
const NOT_RUN: &[&str] = &[
    "run.start",
    "run.submit",
    "run.rerun",
    "sweep.start",
    "chat.send",
    "providers.list",
];

/// A line and what JSON-RPC 2.0 says about it.
#[derive(Debug, Clone)]
struct Case {
    line: Vec<u8>,
    /// A well-formed message without an id: nothing may come back.
    notification: bool,
    /// The id the reply must echo, byte for byte, when it could be read.
    id: Option<String>,
    /// Built member by member, so `notification` is known rather than guessed.
    known: bool,
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

fn key() -> impl Strategy<Value = String> {
    let known = prop::sample::select(vec![
        "run", "offset", "cols", "rows", "size", "protocol", "since", "client", "session", "text",
        "names", "columns", "window", "status", "id", "method", "params", "check",
    ]);
    prop_oneof![known.prop_map(String::from), "\\PC{0,8}"]
}

/// Any JSON value, as text, a few levels deep.
fn json() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just("18446744073709551616".to_string()),
        (-1e6f64..1e6).prop_map(|f| f.to_string()),
        "\\PC{0,12}".prop_map(|s| quoted(&s)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[{}]", items.join(","))),
            // Keys unique: the only repeated key is the one `request` adds on purpose.
            prop::collection::btree_map(key(), inner, 0..4).prop_map(|members| {
                let members: Vec<String> = members
                    .iter()
                    .map(|(k, v)| format!("{}:{v}", quoted(k)))
                    .collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

/// A request object built member by member, some of them wrong, sometimes with a key twice.
fn request() -> impl Strategy<Value = Case> {
    let jsonrpc = prop_oneof![
        4 => Just(Some("\"2.0\"".to_string())),
        1 => Just(Some("\"1.0\"".to_string())),
        1 => Just(Some("2".to_string())),
        1 => Just(None),
    ];
    // (text, whether it is a valid id)
    let id = prop_oneof![
        2 => Just(None),
        1 => Just(Some(("null".to_string(), true))),
        2 => any::<u64>().prop_map(|n| Some((n.to_string(), true))),
        1 => any::<i64>().prop_map(|n| Some((n.to_string(), true))),
        1 => Just(Some(("18446744073709551616".to_string(), true))),
        1 => "\\PC{0,8}".prop_map(|s| Some((quoted(&s), true))),
        1 => Just(Some(("1.5".to_string(), true))),
        1 => prop_oneof![Just("true"), Just("[1]"), Just("{}")]
            .prop_map(|s| Some((s.to_string(), false))),
    ];
    let methods: Vec<&str> = Request::METHODS.to_vec();
    let method = prop_oneof![
        6 => prop::sample::select(methods).prop_map(|m| Some((quoted(m), true))),
        1 => "\\PC{0,12}".prop_map(|s| Some((quoted(&s), true))),
        1 => Just(Some(("5".to_string(), false))),
        1 => Just(None),
    ];
    let params = prop::option::of(json());
    let duplicate = prop::option::weighted(0.15, (any::<prop::sample::Index>(), json()));
    (jsonrpc, id, method, params, duplicate).prop_map(|(jsonrpc, id, method, params, duplicate)| {
        let mut members: Vec<(String, String)> = Vec::new();
        if let Some(v) = &jsonrpc {
            members.push(("jsonrpc".into(), v.clone()));
        }
        if let Some((v, _)) = &id {
            members.push(("id".into(), v.clone()));
        }
        if let Some((v, _)) = &method {
            members.push(("method".into(), v.clone()));
        }
        if let Some(v) = &params {
            members.push(("params".into(), v.clone()));
        }
        let repeated = match duplicate {
            Some((index, value)) if !members.is_empty() => {
                let key = members[index.index(members.len())].0.clone();
                members.push((key, value));
                true
            }
            _ => false,
        };
        let text: Vec<String> = members
            .iter()
            .map(|(k, v)| format!("{}:{v}", quoted(k)))
            .collect();
        let well_formed = jsonrpc.as_deref() == Some("\"2.0\"")
            && method.as_ref().is_some_and(|(_, ok)| *ok)
            && !repeated;
        let notification = id.is_none() && well_formed;
        // The reply's id: the id as sent when it could be read (a well-formed id, no key
        // repeated), else null.
        let id = match id {
            None if notification => None,
            Some((text, true)) if !repeated => Some(text),
            _ => Some("null".to_string()),
        };
        Case {
            line: format!("{{{}}}", text.join(",")).into_bytes(),
            notification,
            id,
            known: true,
        }
    })
}

/// A request with bytes flipped, cut or inserted: no promise but a well-formed answer.
fn mutated() -> impl Strategy<Value = Case> {
    let edits = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..4);
    (request(), edits).prop_map(|(case, edits)| {
        let mut line = case.line;
        for (at, byte, how) in edits {
            let i = at.index(line.len() + 1);
            match how {
                0 if i < line.len() => line[i] = byte,
                1 => line.insert(i, byte),
                _ => line.truncate(i),
            }
        }
        // The framing splits lines at newlines before they get here.
        line.retain(|&b| b != b'\n');
        Case {
            line,
            notification: false,
            id: None,
            known: false,
        }
    })
}

fn any_line() -> impl Strategy<Value = Case> {
    prop_oneof![
        5 => request(),
        4 => mutated(),
        1 => prop::collection::vec(request(), 0..3).prop_map(|batch| Case {
            line: format!(
                "[{}]",
                batch
                    .iter()
                    .map(|c| String::from_utf8_lossy(&c.line).into_owned())
                    .collect::<Vec<_>>()
                    .join(",")
            )
            .into_bytes(),
            notification: false,
            id: Some("null".into()),
            known: true,
        }),
        1 => json().prop_map(|text| Case {
            line: text.into_bytes(),
            notification: false,
            id: None,
            known: false,
        }),
    ]
}

fn check(
    runtime: &tokio::runtime::Runtime,
    daemon: &Arc<Daemon>,
    id: u64,
    case: &Case,
) -> Result<(), TestCaseError> {
    let incoming = parse_request(&case.line);
    if case.known {
        prop_assert_eq!(
            case.notification,
            incoming.reply_to.is_none(),
            "{:?}",
            incoming
        );
    }
    if let Ok(request) = &incoming.request
        && NOT_RUN.contains(&request.method())
    {
        return Ok(());
    }
    let conn = Conn {
        id,
        daemon: daemon.clone(),
        outbox: Outbox::new(1 << 20),
        attached: Default::default(),
    };
    handle_line(&conn, &case.line);
    // Replies encoded on a blocking thread (`hello`) land in their place first.
    let settled = runtime.block_on(tokio::time::timeout(
        std::time::Duration::from_secs(10),
        conn.outbox.settled(),
    ));
    prop_assert!(settled.is_ok(), "a reply never came: {:?}", case);
    let lines = conn.outbox.drain();
    handlers::disconnect(&conn);
    let mut replies = Vec::new();
    for line in &lines {
        let text = std::str::from_utf8(line).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(text.ends_with('\n'), "one line: {text:?}");
        let value: Value = serde_json::from_str(text)
            .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {text}")))?;
        // Events (a `hello` subscribes) are notifications; the rest must be replies.
        if value.get("method").is_none() {
            replies.push((text, value));
        }
    }
    let expected = usize::from(incoming.reply_to.is_some());
    prop_assert_eq!(replies.len(), expected, "replies: {:?}", replies);
    for (text, reply) in &replies {
        prop_assert_eq!(&reply["jsonrpc"], "2.0");
        prop_assert!(reply.get("id").is_some());
        let (result, error) = (reply.get("result"), reply.get("error"));
        prop_assert!(result.is_some() != error.is_some(), "{}", text);
        if let Some(error) = error {
            prop_assert!(
                error["code"].is_i64() && error["message"].is_string(),
                "{}",
                text
            );
        }
        if let Some(id) = &case.id {
            let head = format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},");
            prop_assert!(text.starts_with(&head), "{} does not echo {}", text, id);
        }
    }
    Ok(())
}

#[test]
fn any_line_gets_one_well_formed_reply_or_none_for_a_notification() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::in_dir(dir.path(), dir.path().join("config.toml"));
    let store = crate::store::Store::open(&paths.database(), &paths.runs_dir()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Handlers that answer from a task spawn it on this runtime.
    let _context = runtime.enter();
    let daemon = Daemon::new(paths, Config::default(), store).unwrap();
    // No sampler runs here: the GPU board is as ready as it will be, so `gpus.list` answers.
    daemon.gpus_ready.send_replace(true);
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 512,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let next_id = std::sync::atomic::AtomicU64::new(0);
    runner
        .run(&any_line(), |case| {
            let id = next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            check(&runtime, &daemon, id, &case)
        })
        .unwrap();
}
