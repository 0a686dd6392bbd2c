//! `/metrics` as Prometheus sees it: refused without a `metrics` token, and with one, text a
//! real OpenMetrics parser accepts, with runs, GPUs and gateway series.

mod common;

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::{Env, wait_until};
use serde_json::json;

/// A free loopback port: bound, then let go for the daemon to take.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("addr").port()
}

/// One HTTP/1.1 GET with `Connection: close`; returns (status, headers lowercased, body).
/// The body is read to the end, undoing chunked encoding when the server used it.
fn get(port: u16, path: &str, token: Option<&str>) -> (u16, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the daemon");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the response");
    let raw = String::from_utf8(raw).expect("a UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_lowercase(), value.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, headers, body)
}

/// Undoes `Transfer-Encoding: chunked`.
fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(size.trim(), 16).expect("a hex chunk size");
        if size == 0 {
            return body;
        }
        body.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Parses every sample line of an exposition with `nom-openmetrics`, failing on any line that
/// is neither a comment nor a sample, and the whole text as one OpenMetrics document; returns
/// each sample as (name, labels as `k=v` joined by commas, value).
fn parse(text: &str) -> Vec<(String, String, f64)> {
    let (rest, _) = nom_openmetrics::parser::openmetrics(text)
        .unwrap_or_else(|err| panic!("not an OpenMetrics document: {err:?}\n{text}"));
    assert_eq!(rest, "", "text after # EOF");
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            assert!(
                ["# HELP ", "# TYPE ", "# UNIT "]
                    .iter()
                    .any(|p| line.starts_with(p))
                    || line == "# EOF",
                "a stray comment: {line}"
            );
            continue;
        }
        let input = format!("{line}\n");
        let (rest, family) = nom_openmetrics::parser::family(&input)
            .unwrap_or_else(|err| panic!("{line:?} is not a sample: {err:?}"));
        assert_eq!(rest, "", "{line:?} parsed only in part");
        let sample = family.samples.first().expect("one sample");
        let labels = (sample.labels().iter())
            .map(|label| format!("{}={}", label.name, label.value))
            .collect::<Vec<_>>()
            .join(",");
        samples.push((sample.name().to_string(), labels, sample.number()));
    }
    samples
}

#[test]
fn metrics_needs_a_metrics_token_and_parses_with_runs_gpus_and_gateway() {
    let env = Env::new();
    let port = free_port();
    env.write_config(format!("[http]\nlisten = \"127.0.0.1:{port}\"\n"));
    env.start_daemon(&[("REAGENT_FAKE_GPUS", "2")]);
    let run = env.start(&["sleep", "600"]);
    wait_until("the run to run", || env.status_of(&run) == "running");

    let (status, _, body) = get(port, "/metrics", None);
    assert_eq!(status, 401, "{body}");
    let (status, _, _) = get(port, "/metrics", Some("not-a-token"));
    assert_eq!(status, 401);

    let mut conn = env.connect();
    let created = conn.call("token.create", json!({"name": "m", "scopes": ["metrics"]}));
    let token = created["result"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("token.create: {created}"))
        .to_string();
    let other = conn.call("token.create", json!({"name": "g", "scopes": ["gateway"]}));
    let gateway_only = other["result"]["token"]
        .as_str()
        .expect("a token")
        .to_string();
    let (status, _, _) = get(port, "/metrics", Some(&gateway_only));
    assert_ne!(status, 200, "a token without the metrics scope is refused");

    let mut samples = Vec::new();
    wait_until("both fake GPUs in /metrics", || {
        let (status, headers, body) = get(port, "/metrics", Some(&token));
        assert_eq!(status, 200, "{body}");
        assert!(
            header(&headers, "content-type").starts_with("application/openmetrics-text"),
            "{headers:?}"
        );
        samples = parse(&body);
        let gpus: BTreeSet<&str> = (samples.iter())
            .filter(|(name, _, _)| name == "reagent_gpu_memory_total_bytes")
            .map(|(_, labels, _)| labels.as_str())
            .collect();
        gpus.len() == 2
    });

    let find = |name: &str, labels: &str| {
        (samples.iter())
            .find(|(n, l, _)| n == name && l.contains(labels))
            .map(|(_, _, value)| *value)
            .unwrap_or_else(|| panic!("no {name}{{{labels}}} in {samples:#?}"))
    };
    assert_eq!(find("reagent_runs", "status=running"), 1.0);
    assert_eq!(find("reagent_runs", "status=failed"), 0.0);
    assert_eq!(find("reagent_queue_waiting", ""), 0.0);
    for gpu in ["gpu=0,", "gpu=1,"] {
        let total = find("reagent_gpu_memory_total_bytes", gpu);
        assert_eq!(total, 81920.0 * 1024.0 * 1024.0, "bytes, not MiB");
        assert!(find("reagent_gpu_memory_used_bytes", gpu) <= total);
        assert!(
            (samples.iter())
                .any(|(n, l, _)| n == "reagent_gpu_memory_used_bytes" && l.contains("fake=true")),
            "fake GPUs are labelled fake"
        );
    }
    assert_eq!(
        find("reagent_gateway_requests_total", "route=local,outcome=ok"),
        0.0,
        "the gateway family is there before any request"
    );
    assert!(
        (samples.iter()).any(|(n, _, _)| n == "reagent_gateway_request_duration_seconds_count")
    );
    assert_eq!(find("reagent_store_read_success", ""), 1.0);
    let alerts: f64 = (samples.iter())
        .filter(|(n, _, _)| n == "reagent_alerts")
        .map(|(_, _, v)| v)
        .sum();
    assert_eq!(alerts, 0.0);

    env.ok(&["stop", &run]);
    wait_until("the run to stop", || env.status_of(&run) != "running");
    let (_, _, body) = get(port, "/metrics", Some(&token));
    let after = parse(&body);
    let value = |status: &str| {
        (after.iter())
            .find(|(n, l, _)| n == "reagent_runs" && *l == format!("status={status}"))
            .map(|(_, _, v)| *v)
    };
    assert_eq!(value("running"), Some(0.0), "built at scrape time");

    // A client kept alive on the HTTP listener does not keep the daemon from stopping.
    let _kept_alive = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let pid = env.daemon_pid().expect("daemon pid");
    common::signal(pid, rustix::process::Signal::TERM);
    wait_until("the daemon to exit on SIGTERM", || !common::alive(pid));
}
