//! The relay's policy as a pure machine: what to do with each thing an answer's request and
//! response do, decided without IO and without reading a clock, so every clause below is a
//! unit test (in `relay/tests.rs`) rather than a mock server.
//!
//! The driver ([`super`]) owns the HTTP connection and the daemon's state. It feeds
//! [`Relay::handle`] an [`Input`] with the time it happened, performs the [`Output`]s it gets
//! back, and wakes the machine with [`Input::Tick`] at [`Relay::deadline`].
//!
//! - **Retries.** A refusal with 429, 529 or any 5xx is asked again after the server's
//!   `retry-after` (`retry-after-ms`, seconds or an HTTP date), else after a backoff that
//!   starts at 0.5 s and doubles up to 8 s. Any other refusal ends the answer, naming the cause
//!   in the provider's words (with a hint for 401/403 and 404). Retrying stops once the next
//!   wait would end more than `retry_for` after the first request: a 529 carries no reset time,
//!   and a user must not wait forever. Only refusals are retried: an error once the stream has
//!   begun ends the answer, keeping the text so far.
//! - **Idle limit.** A response that sends no byte for [`IDLE_LIMIT`] is given up on.
//! - **Cancel.** Ends the answer at once, in any phase, a retry's wait included.
//! - **Parts.** Text (and thinking) parsed from one read is joined into one append, so a fast
//!   provider costs clients one `delta` per read rather than one per token; tool-call argument
//!   fragments are appended to their call by the provider's index, never by arrival order.
//! - **Saving.** The answer is persisted after a read at most every [`SAVE_EVERY`].
//! - **The end.** Usage is the provider's latest report; the cost is the usage at the
//!   provider's prices; time to first token runs from the first request (retries included) to
//!   the first text, thinking or tool call, and the speed over the time since.

use std::time::{Duration, Instant, SystemTime};

use reagent::chat::PartKind;
use reagent::config::Prices;
use reqwest::StatusCode;

use crate::llm::{self, ProviderKind, StreamEvent, StreamParser};

/// How often a streaming answer is rewritten in the store: often enough that a crash loses
/// little, rarely enough that a fast stream is not a stream of writes.
pub const SAVE_EVERY: Duration = Duration::from_millis(100);
/// A provider silent this long in a response is given up on: a hung connection must end.
pub const IDLE_LIMIT: Duration = Duration::from_secs(120);
/// The wait before the first retry when the server names none.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between retries the machine picks itself.
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// The most of a refusal's body kept to describe it: provider error objects are small, and a
/// proxy's HTML page must not grow without bound.
const MAX_REFUSAL: usize = 64 * 1024;
/// The most of a refusal's body quoted when it is not a provider error object.
const QUOTE_CHARS: usize = 200;

/// What the machine needs to know about the request it relays, fixed for its life.
pub struct Setup {
    /// The provider's name, for messages.
    pub provider: String,
    /// The URL posted to, for the message when it cannot be reached.
    pub url: String,
    /// Which wire format the response speaks.
    pub kind: ProviderKind,
    /// The provider's prices, when the config gives them: the answer's cost is then known.
    pub prices: Option<Prices>,
    /// How long after the first request retries may still be waited for.
    pub retry_for: Duration,
}

/// Something the driver heard, fed to [`Relay::handle`] with the time it happened.
pub enum Input<'a> {
    /// The provider answered the request made for [`Output::Send`].
    Response {
        /// The response's status.
        status: StatusCode,
        /// Its headers as (lower-case name, value) pairs; values that are not text left out.
        headers: &'a [(&'a str, &'a str)],
        /// The wall-clock time, which an HTTP-date `retry-after` counts from.
        wall: SystemTime,
    },
    /// The request never got a response (connection refused, DNS, TLS): why, in the HTTP
    /// client's words.
    Unreachable(String),
    /// The next bytes of the response's body, cut anywhere.
    Chunk(&'a [u8]),
    /// The body ended.
    End,
    /// Reading the body failed: why, in the HTTP client's words.
    Broken(String),
    /// Time passed: the driver sends this at [`Relay::deadline`].
    Tick,
    /// The user cancelled the answer.
    Cancel,
}

/// Something the driver is to do, in the order given.
#[derive(Debug, PartialEq)]
pub enum Output {
    /// Make the request (again); the driver reports its [`Input::Response`].
    Send,
    /// Append streamed text to the answer.
    Append {
        /// Text, thinking, or a tool call's arguments.
        kind: PartKind,
        /// For arguments, the provider's index of the call (from [`Output::StartToolCall`])
        /// they belong to; `None` appends to the answer's last part.
        call: Option<usize>,
        /// The fragment.
        text: String,
    },
    /// Start a tool-call part; later appends with this `index` belong to it.
    StartToolCall {
        /// The provider's index for the call.
        index: usize,
        /// The provider's id for it, needed to send its result back.
        id: String,
        /// The tool's name.
        name: String,
    },
    /// Save the answer as it stands, so a crash loses little of it.
    Persist,
    /// A refusal will be asked again after a wait: tell the user, who sees nothing stream
    /// meanwhile. The machine then asks for [`Output::Send`] at its deadline.
    Retry(Retry),
    /// The answer is over: record how. Nothing follows.
    Finish(Ending),
}

/// A retry about to be waited for.
#[derive(Debug, PartialEq)]
pub struct Retry {
    /// Which retry this is (1 for the first).
    pub attempt: u32,
    /// How long before asking again.
    pub delay: Duration,
    /// The status that made it worth asking again.
    pub status: u16,
    /// The refusal, in words, for the log.
    pub why: String,
}

/// How an answer ended.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The model finished.
    Complete,
    /// It failed, for the reason given; text streamed before the failure stays.
    Failed(String),
    /// The user cancelled it.
    Cancelled,
}

/// How an answer ended, with what it cost and how fast it came, as the answer records it.
#[derive(Debug, PartialEq)]
pub struct Ending {
    /// Complete, failed or cancelled.
    pub outcome: Outcome,
    /// The provider's last word on the tokens used.
    pub usage: llm::Usage,
    /// The response headers worth showing (rate limits, request ids).
    pub limits: Vec<(String, String)>,
    /// From the first request to the first text, thinking or tool call.
    pub ttft: Option<Duration>,
    /// Output tokens over the time from the first token to the end.
    pub tokens_per_s: Option<f64>,
    /// The usage at the provider's prices, when they are known.
    pub cost_usd: Option<f64>,
}

impl Ending {
    /// An answer that failed before any request could be made (its session, provider or key
    /// missing): nothing was used.
    pub fn failed(why: String) -> Self {
        Self {
            outcome: Outcome::Failed(why),
            usage: llm::Usage::default(),
            limits: Vec::new(),
            ttft: None,
            tokens_per_s: None,
            cost_usd: None,
        }
    }
}

/// Where the answer's request stands.
enum Phase {
    /// A request is out; its response is awaited.
    Sending,
    /// A refusal's body is being read, to say why before deciding whether to ask again.
    Refused {
        status: StatusCode,
        /// The wait the server asked for, if it named one.
        wait: Option<Duration>,
        body: Vec<u8>,
    },
    /// A retry waits until then.
    Waiting { until: Instant },
    /// The answer streams.
    Streaming,
    /// Over; nothing more is done.
    Ended,
}

/// One answer's relay, from the first request to its [`Ending`].
pub struct Relay {
    setup: Setup,
    phase: Phase,
    parser: Box<dyn StreamParser + Send>,
    /// When the first request went out.
    sent: Instant,
    attempts: u32,
    backoff: Duration,
    /// When the response last sent a byte.
    heard: Instant,
    saved: Instant,
    first_token: Option<Instant>,
    usage: llm::Usage,
    limits: Vec<(String, String)>,
}

impl Relay {
    /// A relay for a request made at `now`: the driver is to [`Output::Send`] it.
    pub fn start(setup: Setup, now: Instant) -> (Self, Vec<Output>) {
        let relay = Self {
            parser: setup.kind.parser(),
            setup,
            phase: Phase::Sending,
            sent: now,
            attempts: 0,
            backoff: FIRST_BACKOFF,
            heard: now,
            saved: now,
            first_token: None,
            usage: llm::Usage::default(),
            limits: Vec::new(),
        };
        (relay, vec![Output::Send])
    }

    /// When the driver is to send [`Input::Tick`]: the end of a retry's wait, or the moment a
    /// response being read turns idle. `None` while nothing is due.
    pub fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Waiting { until } => Some(until),
            Phase::Refused { .. } | Phase::Streaming => Some(self.heard + IDLE_LIMIT),
            Phase::Sending | Phase::Ended => None,
        }
    }

    /// Whether the answer is over (its [`Output::Finish`] given).
    pub fn ended(&self) -> bool {
        matches!(self.phase, Phase::Ended)
    }

    /// Takes what the driver heard at `now`; returns what it is to do. An input that does not
    /// fit the phase (a chunk while waiting to retry, anything once ended) changes nothing.
    pub fn handle(&mut self, now: Instant, input: Input<'_>) -> Vec<Output> {
        match (input, &mut self.phase) {
            (_, Phase::Ended) => Vec::new(),
            (Input::Cancel, _) => self.finish(now, Outcome::Cancelled),
            (Input::Tick, Phase::Waiting { until }) if now >= *until => {
                self.phase = Phase::Sending;
                vec![Output::Send]
            }
            (Input::Tick, Phase::Refused { .. } | Phase::Streaming)
                if now >= self.heard + IDLE_LIMIT =>
            {
                let why = format!("the provider went silent for {} s", IDLE_LIMIT.as_secs());
                self.finish(now, Outcome::Failed(why))
            }
            (
                Input::Response {
                    status,
                    headers,
                    wall,
                },
                Phase::Sending,
            ) => {
                self.answered(now, status, headers, wall);
                Vec::new()
            }
            (Input::Unreachable(err), Phase::Sending) => {
                let (provider, url) = (&self.setup.provider, &self.setup.url);
                let why = format!("cannot reach {provider} ({url}): {err}");
                self.finish(now, Outcome::Failed(why))
            }
            (Input::Chunk(bytes), Phase::Refused { body, .. }) => {
                self.heard = now;
                let room = MAX_REFUSAL.saturating_sub(body.len());
                body.extend_from_slice(&bytes[..bytes.len().min(room)]);
                Vec::new()
            }
            (Input::Chunk(bytes), Phase::Streaming) => {
                self.heard = now;
                let events = self.parser.feed(bytes);
                self.streamed(now, events, false)
            }
            (Input::End, Phase::Refused { status, wait, body }) => {
                let (status, wait, body) = (*status, *wait, std::mem::take(body));
                self.refused(now, status, wait, &body)
            }
            // The body is only the refusal's explanation: decide without it, as with none.
            (Input::Broken(_), Phase::Refused { status, wait, .. }) => {
                let (status, wait) = (*status, *wait);
                self.refused(now, status, wait, &[])
            }
            (Input::End, Phase::Streaming) => {
                let events = self.parser.finish();
                self.streamed(now, events, true)
            }
            (Input::Broken(err), Phase::Streaming) => {
                self.finish(now, Outcome::Failed(format!("the stream broke: {err}")))
            }
            _ => Vec::new(),
        }
    }

    /// The response's head: a success starts the stream, anything else is a refusal whose
    /// body is read next.
    fn answered(
        &mut self,
        now: Instant,
        status: StatusCode,
        headers: &[(&str, &str)],
        wall: SystemTime,
    ) {
        self.heard = now;
        if status.is_success() {
            self.limits = llm::headers::rate_limit_headers(headers.iter().copied());
            self.saved = now;
            self.phase = Phase::Streaming;
        } else {
            let header = |name: &str| {
                (headers.iter())
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, value)| (*value).to_string())
            };
            let wait = llm::headers::retry_after_at(header, wall);
            self.phase = Phase::Refused {
                status,
                wait,
                body: Vec::new(),
            };
        }
    }

    /// A refusal read in full: retried after a wait when worth it and there is time left,
    /// else the end of the answer.
    fn refused(
        &mut self,
        now: Instant,
        status: StatusCode,
        wait: Option<Duration>,
        body: &[u8],
    ) -> Vec<Output> {
        let why = format!("{} answered {status}{}", self.setup.provider, detail(body));
        let code = status.as_u16();
        if !(code == 429 || code == 529 || status.is_server_error()) {
            let hint = match code {
                401 | 403 => " — check the provider's key",
                404 => " — check the model name and base_url",
                _ => "",
            };
            return self.finish(now, Outcome::Failed(format!("{why}{hint}")));
        }
        let wait = wait.unwrap_or(self.backoff);
        let waited = now.duration_since(self.sent);
        if waited + wait > self.setup.retry_for {
            let why = format!("gave up after {:.0} s: {why}", waited.as_secs_f64());
            return self.finish(now, Outcome::Failed(why));
        }
        self.attempts += 1;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.phase = Phase::Waiting { until: now + wait };
        vec![Output::Retry(Retry {
            attempt: self.attempts,
            delay: wait,
            status: code,
            why,
        })]
    }

    /// What the parser made of a read (or of the end, `at_end`) becomes appends, and the end
    /// of the answer once the stream says so.
    fn streamed(&mut self, now: Instant, events: Vec<StreamEvent>, at_end: bool) -> Vec<Output> {
        let mut outputs = Vec::with_capacity(events.len());
        for event in coalesce(events) {
            let output = match event {
                StreamEvent::Text(text) => self.token(now, PartKind::Text, text),
                StreamEvent::Thinking(text) => self.token(now, PartKind::Thinking, text),
                StreamEvent::ToolCallStart { index, id, name } => {
                    self.first_token.get_or_insert(now);
                    Output::StartToolCall { index, id, name }
                }
                StreamEvent::ToolCallArgs { index, delta } => Output::Append {
                    kind: PartKind::ToolCall,
                    call: Some(index),
                    text: delta,
                },
                StreamEvent::Usage(usage) => {
                    merge(&mut self.usage, &usage);
                    continue;
                }
                StreamEvent::Done { .. } => {
                    outputs.extend(self.finish(now, Outcome::Complete));
                    return outputs;
                }
                StreamEvent::Error(error) => {
                    outputs.extend(self.finish(now, Outcome::Failed(error)));
                    return outputs;
                }
            };
            outputs.push(output);
        }
        if at_end {
            // Parsers report a missing terminator themselves; this is the backstop.
            let why = "the stream ended before the model finished".to_string();
            outputs.extend(self.finish(now, Outcome::Failed(why)));
        } else if now.duration_since(self.saved) >= SAVE_EVERY {
            self.saved = now;
            outputs.push(Output::Persist);
        }
        outputs
    }

    /// An append of text or thinking, the first of which marks the first token.
    fn token(&mut self, now: Instant, kind: PartKind, text: String) -> Output {
        self.first_token.get_or_insert(now);
        Output::Append {
            kind,
            call: None,
            text,
        }
    }

    /// Ends the answer at `now`, with what it used, cost and how fast it came.
    fn finish(&mut self, now: Instant, outcome: Outcome) -> Vec<Output> {
        self.phase = Phase::Ended;
        let usage = self.usage;
        let streaming = self.first_token.map(|first| now.duration_since(first));
        let tokens_per_s = match (streaming, usage.output) {
            (Some(streaming), Some(output)) if !streaming.is_zero() => {
                Some(output as f64 / streaming.as_secs_f64())
            }
            _ => None,
        };
        let cost_usd = self.setup.prices.map(|prices| {
            let (input, output) = (usage.input.unwrap_or(0), usage.output.unwrap_or(0));
            (input as f64 * prices.input + output as f64 * prices.output) / 1e6
        });
        vec![Output::Finish(Ending {
            outcome,
            usage,
            limits: std::mem::take(&mut self.limits),
            ttft: self
                .first_token
                .map(|first| first.duration_since(self.sent)),
            tokens_per_s,
            cost_usd,
        })]
    }
}

/// The provider's own words about a refusal, from its JSON error object if it sent one, else
/// the start of the body; empty for an empty body.
fn detail(body: &[u8]) -> String {
    let message = llm::error::describe_error_body(body).unwrap_or_else(|| {
        String::from_utf8_lossy(body)
            .chars()
            .take(QUOTE_CHARS)
            .collect()
    });
    if message.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", message.trim())
    }
}

/// Joins consecutive text (and thinking) pieces parsed from one read into one piece: a fast
/// provider then costs clients one `delta` per read instead of one per token, while a slow
/// one still shows every token as it comes.
pub(super) fn coalesce(events: Vec<StreamEvent>) -> Vec<StreamEvent> {
    let mut joined: Vec<StreamEvent> = Vec::with_capacity(events.len());
    for event in events {
        match (joined.last_mut(), event) {
            (Some(StreamEvent::Text(text)), StreamEvent::Text(more))
            | (Some(StreamEvent::Thinking(text)), StreamEvent::Thinking(more)) => {
                text.push_str(&more)
            }
            (_, event) => joined.push(event),
        }
    }
    joined
}

/// Takes a usage report into the total: a field the provider left out keeps its last value.
fn merge(total: &mut llm::Usage, new: &llm::Usage) {
    total.input = new.input.or(total.input);
    total.output = new.output.or(total.output);
    total.cached = new.cached.or(total.cached);
}
