//! The HTTP/1.1 plumbing the loopback mock servers share: accept connections, read one request
//! (line, headers, JSON body) per connection, write a whole response.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};

/// One request as a mock server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Request line, e.g. `POST /v1/chat/completions HTTP/1.1`.
    pub line: String,
    /// Headers, lowercased names.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`null` when there is none or it is not JSON).
    pub body: serde_json::Value,
}

/// Binds a free loopback port and serves each connection on its own thread with `handle`;
/// returns `http://127.0.0.1:PORT`. The server lives as long as the test process.
pub fn serve(handle: impl Fn(TcpStream) + Send + Sync + Clone + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the mock");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let handle = handle.clone();
            std::thread::spawn(move || handle(stream));
        }
    });
    url
}

/// Reads one request; `None` when the client went away first.
pub fn read_request(stream: &TcpStream) -> Option<Seen> {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.trim().split_once(':') {
            headers.push((name.trim().to_lowercase(), value.trim().to_string()));
        }
    }
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Seen {
        line: line.trim().into(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or_default(),
    })
}

/// Writes a complete response with a JSON body and closes the exchange.
pub fn respond(mut stream: &TcpStream, status: &str, body: &str) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()));
}
