//! `reagent chat`, `sessions`, `history`, `providers`: chat from the shell, through the daemon
//! (which alone holds the keys).

use std::io::{IsTerminal as _, Read as _};
use std::process::ExitCode;

use reagent::chat::{
    MessageInfo, MessageStatus, PartKind, ProviderInfo, Role, SessionInfo, retry_note,
};
use reagent::client::Update;
use reagent::lookup::resolve;
use reagent::protocol::{
    CancelChat, CreateSession, DeleteSession, EventKind, ForkSession, ListProviders, ListSessions,
    RenameSession, SendChat, SessionHistory, SetSessionModel, UsageQuery,
};
use reagent::time::format_duration_ms;
use tokio::io::AsyncWriteExt as _;

use super::{Ctx, aligned, print_json};
use crate::cli::{ChatArgs, SessionAction};
use crate::exit::Unreachable;
use crate::sanitize;

/// Streams one answer to stdout; exits 0 when it completes, 1 (with the error on stderr)
/// otherwise. In an agent session the answer is the whole turn: each tool call and its
/// result are told on stderr (with any approval it waits for), and the answers that read
/// the results stream on, until the model answers without calling a tool.
pub async fn chat(ctx: &Ctx, args: ChatArgs) -> anyhow::Result<ExitCode> {
    let prompt = if args.prompt.is_empty() {
        if std::io::stdin().is_terminal() {
            anyhow::bail!("give a prompt, as arguments or on stdin");
        }
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        args.prompt.join(" ")
    };
    let (client, notes) = ctx.connect().await?;
    let (_, mut updates) = client.subscribe(notes, "reagent chat").await?;
    let session = match args.session {
        Some(session) => session,
        None => {
            let create = CreateSession {
                model: args.model,
                system: args.system,
                cwd: std::env::current_dir().ok(),
                title: None,
                agent: args.agent,
            };
            let id = client.call(&create).await?.id;
            // On stderr, so stdout stays the answer alone; without it a session started
            // here could not be continued with `-s`.
            eprintln!("session {id} (continue with -s {id})");
            id
        }
    };
    let mut answer = client
        .call(&SendChat {
            session: session.clone(),
            text: prompt,
        })
        .await?;
    let mut shown = Shown::new(args.json);
    loop {
        let update = tokio::select! {
            update = updates.next() => update?,
            _ = tokio::signal::ctrl_c() => {
                client.call(&CancelChat { session: session.clone() }).await?;
                continue;
            }
        };
        let event = match update {
            Some(Update::Event(event)) => event,
            Some(Update::Output(_)) => continue,
            // Deltas were lost with the rest of the queue: the answer as the daemon has it
            // now tells what they said.
            Some(Update::Resynced(_)) => {
                let history = SessionHistory {
                    session: session.clone(),
                };
                let messages = client.call(&history).await?;
                let Some(message) = messages.into_iter().find(|m| m.id == answer.id) else {
                    anyhow::bail!("the answer {} is gone from its session", answer.id);
                };
                if message.status.is_terminal() {
                    return shown.finish(&message).await;
                }
                shown.catch_up(&message).await?;
                continue;
            }
            None => return Err(Unreachable("the daemon went away mid-answer".into()).into()),
        };
        match event.kind {
            EventKind::Delta {
                message,
                part,
                kind,
                offset,
                text,
                ..
            } if message == answer.id => shown.delta(part, kind, offset, &text).await?,
            // On stderr, like the session's id: stdout stays the answer alone.
            EventKind::ChatRetrying {
                message,
                attempt,
                delay_ms,
                status,
                provider,
                ..
            } if message == answer.id => {
                let note = retry_note(attempt, delay_ms, status, &provider);
                eprintln!("reagent: {}", sanitize::line(&note));
            }
            EventKind::Message { message }
                if message.id == answer.id && message.status.is_terminal() =>
            {
                // An answer that called tools leaves the turn going.
                let going_on = shown.tools(&message).await?;
                if !going_on {
                    return shown.finish(&message).await;
                }
            }
            // The turn goes on: the next answer reads the tools' results.
            EventKind::Message { message }
                if message.session == answer.session
                    && message.role == Role::Assistant
                    && message.created_at >= answer.created_at
                    && message.id != answer.id
                    && shown.awaiting_next =>
            {
                shown.next_answer();
                answer = message;
                // A turn cut short ends on an answer that never streams.
                if answer.status.is_terminal() {
                    return shown.finish(&answer).await;
                }
            }
            EventKind::Approval { approval }
                if approval.session == answer.session
                    && approval.state == reagent::agent::ApprovalState::Pending =>
            {
                eprintln!(
                    "reagent: `{}` waits for approval {}:\n{}\n  reagent approve {} | reagent deny {}",
                    approval.tool,
                    approval.id,
                    sanitize::text(&approval.action),
                    approval.id,
                    approval.id
                );
            }
            _ => {}
        }
    }
}

/// What of the answer is on stdout: as JSON, every delta as it came; as text, how many bytes
/// of each text part, so text that arrives twice (a delta the history already had) or not at
/// all (deltas dropped with a resync) is printed exactly once, in order.
struct Shown {
    json: bool,
    out: tokio::io::Stdout,
    /// Bytes printed of each part, by index (text parts only).
    printed: Vec<usize>,
    /// Tool parts of the answer told on stderr, by index.
    told: usize,
    /// The answer called tools whose results are all in: the turn's next answer follows.
    awaiting_next: bool,
}

impl Shown {
    fn new(json: bool) -> Self {
        Self {
            json,
            out: tokio::io::stdout(),
            printed: Vec::new(),
            told: 0,
            awaiting_next: false,
        }
    }

    /// Tells the answer's tool calls and results not told yet; true while the turn goes on
    /// (the answer completed calling tools). Results come in a later change of the same
    /// answer, after any approval.
    async fn tools(&mut self, message: &MessageInfo) -> anyhow::Result<bool> {
        let calls = (message.parts.iter()).filter(|p| p.kind == PartKind::ToolCall);
        if message.status != MessageStatus::Complete || calls.clone().count() == 0 {
            return Ok(false);
        }
        self.catch_up(message).await?;
        self.out.flush().await?;
        for part in &message.parts[self.told.min(message.parts.len())..] {
            let name = sanitize::line(part.name.as_deref().unwrap_or("?"));
            match part.kind {
                PartKind::ToolCall => eprintln!("reagent: → {name} {}", brief(&part.text)),
                PartKind::ToolResult if part.error => {
                    eprintln!("reagent: ✗ {name}: {}", brief(&part.text))
                }
                PartKind::ToolResult => eprintln!("reagent: ← {name}: {}", brief(&part.text)),
                _ => {}
            }
        }
        self.told = message.parts.len();
        if self.json {
            print_json(&serde_json::json!({"type": "message", "message": message}))?;
        }
        let results = (message.parts.iter()).filter(|p| p.kind == PartKind::ToolResult);
        self.awaiting_next = results.count() >= calls.count();
        Ok(true)
    }

    /// Starts on the turn's next answer.
    fn next_answer(&mut self) {
        self.printed.clear();
        self.told = 0;
        self.awaiting_next = false;
    }

    /// Shows a delta: `text` goes at byte `offset` of part `part`.
    async fn delta(
        &mut self,
        part: usize,
        kind: PartKind,
        offset: usize,
        text: &str,
    ) -> anyhow::Result<()> {
        if self.json {
            print_json(&serde_json::json!({"type": "delta", "kind": kind, "text": text}))?;
        } else if kind == PartKind::Text {
            let printed = self.printed.get(part).copied().unwrap_or(0);
            // A delta past what was printed cannot come without a resync before it, and the
            // resync brought the part up to date; what it repeats is skipped.
            if let Some(new) = printed
                .checked_sub(offset)
                .and_then(|seen| text.get(seen..))
            {
                self.print(part, new).await?;
            }
        }
        Ok(())
    }

    /// Prints what `message` has beyond what was printed (not in JSON, where the final
    /// message carries it all).
    async fn catch_up(&mut self, message: &MessageInfo) -> anyhow::Result<()> {
        if self.json {
            return Ok(());
        }
        for (index, part) in message.parts.iter().enumerate() {
            let printed = self.printed.get(index).copied().unwrap_or(0);
            if part.kind == PartKind::Text
                && let Some(new) = part.text.get(printed..)
            {
                self.print(index, new).await?;
            }
        }
        Ok(())
    }

    async fn print(&mut self, part: usize, text: &str) -> anyhow::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        self.out.write_all(sanitize::text(text).as_bytes()).await?;
        self.out.flush().await?;
        if self.printed.len() <= part {
            self.printed.resize(part + 1, 0);
        }
        // Counted in the answer's own bytes, which the offsets of deltas are in.
        self.printed[part] += text.len();
        Ok(())
    }

    /// Prints what the deltas did not and the outcome; the exit code is the answer's.
    async fn finish(mut self, message: &MessageInfo) -> anyhow::Result<ExitCode> {
        if self.json {
            print_json(&serde_json::json!({"type": "message", "message": message}))?;
        } else {
            self.catch_up(message).await?;
            if !message.text().ends_with('\n') {
                self.out.write_all(b"\n").await?;
            }
            self.out.flush().await?;
        }
        match message.status {
            MessageStatus::Complete => Ok(ExitCode::SUCCESS),
            status => {
                let why = message
                    .error
                    .clone()
                    .unwrap_or_else(|| format!("{status:?}").to_lowercase());
                eprintln!("reagent: the answer ended early: {}", sanitize::text(&why));
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

/// A tool's arguments or result on one line, cut to what a glance needs.
fn brief(text: &str) -> String {
    let line = sanitize::line(&text.split_whitespace().collect::<Vec<_>>().join(" ")).into_owned();
    match line.char_indices().nth(160) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    }
}

/// `reagent sessions [--json]`
pub async fn sessions(ctx: &Ctx, json: bool) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let sessions = client.call(&ListSessions {}).await?;
    if json {
        print_json(&sessions)?;
    } else {
        print!("{}", sessions_table(&sessions));
    }
    Ok(ExitCode::SUCCESS)
}

/// `reagent history SESSION [--json]`
pub async fn history(ctx: &Ctx, session: &str, json: bool) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let messages = client
        .call(&SessionHistory {
            session: session.into(),
        })
        .await?;
    if json {
        print_json(&messages)?;
        return Ok(ExitCode::SUCCESS);
    }
    // The system prompt comes first: for a chat opened from an alert it is the context the
    // model was given (the alert, the run's screen, the metric lines around its step). The
    // session is found by the daemon's own rule, as `session.history` found it.
    let sessions = client.call(&ListSessions {}).await?;
    let info = resolve(&sessions, session, "session", |s| {
        (&s.id, s.title.as_deref())
    })
    .map_err(reagent::Error::Rpc)?;
    if let Some(system) = &info.system {
        println!("── system");
        println!("{}", sanitize::text(system));
    }
    for message in messages {
        let who = match message.role {
            Role::User => "you",
            Role::Assistant => "model",
        };
        let mut notes = Vec::new();
        if message.status != MessageStatus::Complete {
            notes.push(format!("{:?}", message.status).to_lowercase());
        }
        if let Some(ms) = message.usage.ttft_ms {
            notes.push(format!("first token {}", format_duration_ms(ms)));
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join(", "))
        };
        println!("── {who}{notes}");
        println!("{}", sanitize::text(&message.text()));
        if let Some(error) = &message.error {
            println!("[error: {}]", sanitize::text(error));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `reagent providers [--check] [--json]`
pub async fn providers(ctx: &Ctx, check: bool, json: bool) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let providers = client.call(&ListProviders { check }).await?;
    if json {
        print_json(&providers)?;
    } else if providers.is_empty() {
        println!(
            "no providers: add [providers.NAME] to the config, or set OPENAI_API_KEY / ANTHROPIC_API_KEY for the daemon"
        );
    } else {
        print!("{}", providers_table(&providers, check));
    }
    Ok(ExitCode::SUCCESS)
}

/// Sessions as aligned columns; the title comes last, where a long one can run on.
fn sessions_table(sessions: &[SessionInfo]) -> String {
    let mut rows = vec![["ID", "MODEL", "TITLE"].map(String::from).to_vec()];
    rows.extend(sessions.iter().map(|session| {
        vec![
            session.id.clone(),
            session.model.clone(),
            session.title.clone().unwrap_or_else(|| "-".into()),
        ]
    }));
    aligned(&rows)
}

/// Providers as aligned columns; with `--check`, what each answered comes before the models.
fn providers_table(providers: &[ProviderInfo], check: bool) -> String {
    let mut header = vec!["NAME", "KIND", "KEY", "URL"];
    if check {
        header.push("CHECK");
    }
    header.push("MODELS");
    let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
    rows.extend(providers.iter().map(|p| {
        let key = if p.has_key { "ok" } else { "MISSING" };
        let mut row = vec![
            p.name.clone(),
            p.kind.clone(),
            key.into(),
            p.base_url.clone(),
        ];
        if check {
            row.push(p.answers.clone().unwrap_or_else(|| "-".into()));
        }
        row.push(p.models.join(", "));
        row
    }));
    aligned(&rows)
}

/// `reagent session rename|model|fork|delete|cancel`
pub async fn session(ctx: &Ctx, action: SessionAction) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    match action {
        SessionAction::Rename { session, title } => {
            let renamed = client.call(&RenameSession { session, title }).await?;
            println!("{} is now {}", renamed.id, sanitize::line(renamed.label()));
        }
        SessionAction::Model { session, model } => {
            let moved = client.call(&SetSessionModel { session, model }).await?;
            println!(
                "{} now talks to {}",
                sanitize::line(moved.label()),
                sanitize::line(&moved.model)
            );
        }
        SessionAction::Fork { session, at } => {
            println!("{}", client.call(&ForkSession { session, at }).await?.id);
        }
        SessionAction::Delete { session } => {
            client
                .call(&DeleteSession {
                    session: session.clone(),
                })
                .await?;
            println!("deleted {session}");
        }
        SessionAction::Cancel { session } => {
            client.call(&CancelChat { session }).await?;
        }
        SessionAction::Agent {
            session,
            on,
            off,
            mode,
            auto,
        } => {
            let set = reagent::protocol::SetSessionAgent {
                session,
                enabled: (on || off).then_some(on),
                mode,
                auto: (!auto.is_empty()).then_some(auto),
            };
            let info = client.call(&set).await?;
            let policy = &info.agent;
            let auto: Vec<&str> = policy.auto.iter().map(String::as_str).collect();
            println!(
                "{}: tools {}, acting tools {}{}",
                sanitize::line(info.label()),
                if policy.enabled { "on" } else { "off" },
                format!("{:?}", policy.mode).to_lowercase(),
                match auto.is_empty() {
                    true => String::new(),
                    false => format!(", without asking: {}", sanitize::line(&auto.join(", "))),
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `reagent usage [--json]`
pub async fn usage(ctx: &Ctx, json: bool) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let report = client.call(&UsageQuery {}).await?;
    if json {
        print_json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    for (title, rows) in [("per day", &report.days), ("per session", &report.sessions)] {
        println!("{title}:");
        for row in rows {
            println!(
                "  {:<12} {:>5} answers  {:>9} in  {:>9} out  {:>9} cached  ${:.4}",
                sanitize::line(&row.key),
                row.answers,
                row.input,
                row.output,
                row.cached,
                row.cost_usd
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(name: &str, kind: &str, answers: Option<&str>) -> ProviderInfo {
        ProviderInfo {
            name: name.into(),
            kind: kind.into(),
            base_url: format!("https://{name}.example/v1"),
            models: vec!["m1".into(), "m2".into()],
            has_key: name != "local",
            answers: answers.map(Into::into),
        }
    }

    /// Where each line has its needle last: with aligned columns, the same column everywhere.
    fn columns_of(table: &str, needles: &[&str]) -> Vec<usize> {
        table
            .lines()
            .zip(needles)
            .map(|(line, needle)| line.rfind(needle).expect(needle))
            .collect()
    }

    #[test]
    fn providers_line_up_under_their_header_whatever_the_name_lengths() {
        let providers = [
            provider("a-very-long-provider-name", "openai", Some("ok")),
            provider("local", "anthropic", Some("401 from local")),
        ];
        let table = providers_table(&providers, true);
        let urls = columns_of(&table, &["URL", "https://a-very", "https://local"]);
        assert!(urls.windows(2).all(|w| w[0] == w[1]), "{table}");
        assert!(table.contains("MISSING"), "{table}");
        let plain = providers_table(&providers, false);
        assert!(!plain.contains("CHECK"), "{plain}");
    }

    #[test]
    fn sessions_line_up_with_a_dash_for_no_title() {
        let session = |id: &str, model: &str, title: Option<&str>| SessionInfo {
            id: id.into(),
            title: title.map(Into::into),
            model: model.into(),
            system: None,
            cwd: "/".into(),
            created_at: 0,
            agent: Default::default(),
        };
        let table = sessions_table(&[
            session("0000000a", "openai/gpt-4o-mini", Some("loss spike")),
            session("0000000b", "anthropic/claude-sonnet-4-5", None),
        ]);
        let titles = columns_of(&table, &["TITLE", "loss spike", "-"]);
        assert!(titles.windows(2).all(|w| w[0] == w[1]), "{table}");
    }
}
