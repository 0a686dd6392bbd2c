//! `/rpc`: the socket's protocol over WebSocket, against a real daemon. Authentication by the
//! first message and by the upgrade's header, a run's events, and the 5 s limit on
//! connections that never authenticate.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Env, TIMEOUT};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

/// A daemon with `[http]` on a free loopback port, and a token with every scope.
struct Daemon {
    env: Env,
    port: u16,
    token: String,
}

fn daemon() -> Daemon {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        probe.local_addr().expect("addr").port()
    };
    let env = Env::new();
    env.write_config(format!("[http]\nlisten = \"127.0.0.1:{port}\"\n"));
    env.start_daemon(&[]);
    let created = env.connect().call("token.create", json!({"name": "t"}));
    let token = created["result"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {created}"))
        .to_string();
    Daemon { env, port, token }
}

/// How a read ended when it got no message.
#[derive(Debug, PartialEq)]
enum Ended {
    /// The daemon sent a close frame with this code.
    Closed(CloseCode),
    /// The connection ended without one.
    Dropped,
    /// Nothing within the time given.
    Quiet,
}

/// A blocking WebSocket client.
struct Ws {
    socket: WebSocket<TcpStream>,
    next_id: u64,
}

impl Ws {
    fn connect(port: u16, bearer: Option<&str>) -> Result<Self, tungstenite::Error> {
        let mut request = format!("ws://127.0.0.1:{port}/rpc")
            .into_client_request()
            .expect("request");
        if let Some(token) = bearer {
            let value = format!("Bearer {token}").parse().expect("header value");
            request.headers_mut().insert("authorization", value);
        }
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        // Short reads, so waits are bounded by our own deadlines.
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let (socket, _) = tungstenite::client(request, stream).map_err(|err| match err {
            tungstenite::HandshakeError::Failure(err) => err,
            tungstenite::HandshakeError::Interrupted(_) => {
                panic!("the handshake did not finish within the read timeout")
            }
        })?;
        Ok(Self { socket, next_id: 1 })
    }

    fn send(&mut self, message: &Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .expect("send");
    }

    /// The next JSON-RPC message within `within`, or how the connection ended.
    fn read_within(&mut self, within: Duration) -> Result<Value, Ended> {
        let deadline = Instant::now() + within;
        loop {
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    assert!(!text.contains('\n'), "one message per frame: {text}");
                    return Ok(serde_json::from_str(&text).expect("the daemon sends JSON"));
                }
                Ok(Message::Close(frame)) => {
                    return Err(frame.map_or(Ended::Dropped, |frame| Ended::Closed(frame.code)));
                }
                Ok(Message::Binary(_)) => panic!("the daemon sent a binary frame"),
                Ok(_) => {}
                Err(tungstenite::Error::Io(err))
                    if matches!(
                        err.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if Instant::now() > deadline {
                        return Err(Ended::Quiet);
                    }
                }
                Err(_) => return Err(Ended::Dropped),
            }
        }
    }

    fn read(&mut self) -> Value {
        self.read_within(TIMEOUT)
            .unwrap_or_else(|ended| panic!("no message from the daemon: {ended:?}"))
    }

    /// Sends a request and returns its response; notifications read meanwhile go to `seen`.
    fn call(&mut self, method: &str, params: Value, seen: &mut Vec<Value>) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let message = self.read();
            if message.get("id") == Some(&json!(id)) {
                return message;
            }
            seen.push(message);
        }
    }

    fn auth(&mut self, token: &str) -> Value {
        self.send(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "auth", "params": {"token": token}}),
        );
        self.read()
    }

    /// Reads until the run `id` has ended, returning its events' (seq, status), in order.
    fn follow_run(&mut self, id: &str, mut seen: Vec<Value>) -> Vec<(u64, String)> {
        let mut statuses = Vec::new();
        loop {
            let message = if seen.is_empty() {
                self.read()
            } else {
                seen.remove(0)
            };
            let event = &message["params"];
            if message["method"] != "event" || event["type"] != "run" || event["run"]["id"] != id {
                continue;
            }
            let status = event["run"]["status"].as_str().expect("status").to_string();
            statuses.push((event["seq"].as_u64().expect("seq"), status.clone()));
            if ["finished", "failed", "stopped", "lost"].contains(&status.as_str()) {
                return statuses;
            }
        }
    }
}

fn assert_ran_to_the_end(statuses: &[(u64, String)]) {
    let names: Vec<&str> = statuses.iter().map(|(_, status)| status.as_str()).collect();
    assert!(names.contains(&"running"), "{statuses:?}");
    assert_eq!(names.last(), Some(&"finished"), "{statuses:?}");
    assert!(
        statuses.windows(2).all(|pair| pair[0].0 < pair[1].0),
        "seq increases: {statuses:?}"
    );
}

#[test]
fn a_client_authenticated_by_its_first_message_sees_a_run_start_and_end() {
    let d = daemon();
    let mut ws = Ws::connect(d.port, None).expect("upgrade without a header");
    let ok = ws.auth(&d.token);
    assert_eq!(
        ok,
        json!({"jsonrpc": "2.0", "id": 0, "result": {"ok": true}})
    );

    let mut seen = Vec::new();
    let hello = ws.call("hello", json!({"protocol": 1}), &mut seen);
    assert!(hello["result"].is_object(), "{hello}");
    let started = ws.call(
        "run.start",
        json!({"command": ["sh", "-c", "echo hi"]}),
        &mut seen,
    );
    let id = started["result"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{started}"))
        .to_string();
    assert_ran_to_the_end(&ws.follow_run(&id, seen));

    // Errors come back as on the socket, and the connection stays usable.
    ws.socket
        .send(Message::binary(b"{}".to_vec()))
        .expect("send");
    assert_eq!(ws.read()["error"]["code"], -32700);
    let unknown = ws.call("runs.explode", json!({}), &mut Vec::new());
    assert_eq!(unknown["error"]["code"], -32601);
    // A token cannot mint tokens: those methods are the Unix socket's alone.
    let minted = ws.call("token.create", json!({"name": "more"}), &mut Vec::new());
    assert_eq!(minted["error"]["code"], -32600, "{minted}");
    assert!(minted.get("result").is_none());
    let runs = ws.call("runs.list", json!({}), &mut Vec::new());
    assert!(
        runs["result"]
            .as_array()
            .is_some_and(|runs| runs.len() == 1),
        "{runs}"
    );

    // A message over the protocol's 16 MiB closes the connection. The daemon answers with
    // an error and a close frame (1009), but stops reading mid-message, so this client,
    // still writing, may see the connection reset before it can read them.
    let huge = format!("\"{}\"", "x".repeat(16 * 1024 * 1024));
    let _ = ws.socket.send(Message::text(huge));
    loop {
        match ws.read_within(TIMEOUT) {
            Ok(message) => assert_eq!(message["error"]["code"], -32600, "{message}"),
            Err(Ended::Closed(code)) => {
                assert_eq!(code, CloseCode::Size);
                break;
            }
            Err(Ended::Dropped) => break,
            Err(Ended::Quiet) => panic!("the connection stayed open after 16 MiB"),
        }
    }
}

#[test]
fn a_client_that_sends_nothing_is_closed_after_5_s() {
    let d = daemon();
    let mut ws = Ws::connect(d.port, None).expect("upgrade");
    let opened = Instant::now();
    let ended = ws
        .read_within(TIMEOUT)
        .expect_err("no message before the close");
    let after = opened.elapsed();
    assert_eq!(ended, Ended::Closed(CloseCode::Policy));
    assert!(
        after >= Duration::from_secs(4),
        "closed too early: {after:?}"
    );
    assert!(
        after < Duration::from_secs(10),
        "closed too late: {after:?}"
    );
}

#[test]
fn a_wrong_token_gets_an_error_and_no_events() {
    let d = daemon();
    let mut ws = Ws::connect(d.port, None).expect("upgrade");
    let refused = ws.auth("rg_not_a_token");
    assert_eq!(refused["id"], 0);
    assert_eq!(refused["error"]["code"], -32602, "{refused}");

    // Nothing runs before a good token: not `hello`, not a run.
    let hello = ws.call("hello", json!({"protocol": 1}), &mut Vec::new());
    assert_eq!(hello["error"]["code"], -32600, "{hello}");
    assert!(
        hello["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("auth")),
        "{hello}"
    );
    let started = ws.call("run.start", json!({"command": ["true"]}), &mut Vec::new());
    assert!(started["error"].is_object(), "{started}");
    assert!(
        d.env.runs().is_empty(),
        "a run started before authentication"
    );

    // A run started by someone else sends it no event: nothing comes until the close.
    let id = d.env.start(&["true"]);
    common::wait_until("the run to finish", || d.env.status_of(&id) == "finished");
    match ws.read_within(TIMEOUT) {
        Ok(message) => panic!("a message reached an unauthenticated client: {message}"),
        Err(ended) => assert_eq!(ended, Ended::Closed(CloseCode::Policy)),
    }

    // A wrong token in the header gets no WebSocket at all.
    match Ws::connect(d.port, Some("rg_not_a_token")) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        Err(err) => panic!("unexpected error: {err}"),
        Ok(_) => panic!("a wrong bearer token got a WebSocket"),
    }
}

#[test]
fn a_client_authenticated_by_its_header_needs_no_auth_message() {
    let d = daemon();
    let mut ws = Ws::connect(d.port, Some(&d.token)).expect("upgrade with the header");
    let hello = ws.call("hello", json!({"protocol": 1}), &mut Vec::new());
    assert!(hello["result"].is_object(), "{hello}");
    let id = d.env.start(&["true"]);
    assert_ran_to_the_end(&ws.follow_run(&id, Vec::new()));

    // Past the 5 s limit, an authenticated connection stays open.
    let quiet_until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < quiet_until {
        match ws.read_within(Duration::from_millis(500)) {
            Ok(_) | Err(Ended::Quiet) => {}
            Err(ended) => panic!("an authenticated client was closed: {ended:?}"),
        }
    }
    let status = ws.call("daemon.status", json!({}), &mut Vec::new());
    assert!(status["result"].is_object(), "{status}");

    // The client's pings are answered.
    ws.socket
        .send(Message::Ping(b"are you there".to_vec().into()))
        .expect("ping");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match ws.socket.read() {
            Ok(Message::Pong(data)) => {
                assert_eq!(&data[..], b"are you there");
                break;
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(_)) => assert!(Instant::now() < deadline, "no pong"),
            Err(err) => panic!("no pong: {err}"),
        }
    }
}
