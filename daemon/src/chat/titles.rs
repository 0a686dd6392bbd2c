//! Titles for sessions nobody named, from their first message, so a session list says what
//! each session is about without the user renaming every one.
//!
//! `[chat] titles` picks how: `first_line` (the default) takes the message's first line at
//! once; `model` asks a model (`[chat] title_model`, else the session's own) for a short
//! title in the background and takes the first line if that fails; `off` leaves sessions
//! untitled. A title is only ever written to a session that is still untitled, so a rename
//! made while a model thinks wins. Title requests are not answers: they are kept out of the
//! session and of `reagent usage` (a title costs a few dozen tokens).

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use reagent::chat::{PartKind, SessionInfo};
use reagent::config::{ChatConfig, TitleMode};

use super::relay::{
    self,
    machine::{Ending, Outcome, Output},
};
use crate::daemon::{Daemon, State};
use crate::llm;

/// The longest title, in characters; a longer first line is cut at a word before this.
const TITLE_CHARS: usize = 60;
/// How much of the first message a model is shown: enough to know its subject.
const PROMPT_CHARS: usize = 2000;
/// How long a model may take to title a session before the first line is used instead.
const MODEL_LIMIT: Duration = Duration::from_secs(30);
/// What a model is asked.
const INSTRUCTION: &str = "Write a title of at most six words for a conversation that begins \
    with the user's message below. Answer with the title alone: no quotes, no punctuation at \
    the end.";

/// Whether `session` is to be titled from the message about to be saved: automatic titles
/// are on, it has no title, and it has no message yet. Call it with the state locked, before
/// saving the message, so that only the first message of a session can say yes.
pub fn wanted(config: &ChatConfig, state: &State, session: &SessionInfo) -> bool {
    if config.titles == TitleMode::Off || session.title.is_some() {
        return false;
    }
    match state.messages(&session.id) {
        Ok(messages) => messages.is_empty(),
        Err(err) => {
            tracing::warn!("cannot tell whether session {} is new: {err:#}", session.id);
            false
        }
    }
}

/// Titles `session` from its first message `text`, as the config says: at once from the
/// first line, or in the background from a model. Call it without the state locked.
pub fn give(daemon: &Arc<Daemon>, session: &SessionInfo, text: &str) {
    let config = &daemon.config.chat;
    let fallback = first_line(text);
    match config.titles {
        TitleMode::Off => {}
        TitleMode::FirstLine => set_if_untitled(daemon, &session.id, fallback),
        TitleMode::Model => {
            let model = config
                .title_model
                .clone()
                .unwrap_or_else(|| session.model.clone());
            let prompt: String = text.chars().take(PROMPT_CHARS).collect();
            let (daemon, id) = (daemon.clone(), session.id.clone());
            tokio::spawn(async move {
                let asked = tokio::time::timeout(MODEL_LIMIT, ask(&daemon, &model, prompt));
                let title = match asked.await {
                    Ok(Ok(title)) => Some(title),
                    Ok(Err(why)) => {
                        tracing::info!(
                            "{model} gave session {id} no title ({why}): using its first line"
                        );
                        fallback
                    }
                    Err(_) => {
                        tracing::info!(
                            "{model} took over 30 s to title session {id}: using its first line"
                        );
                        fallback
                    }
                };
                set_if_untitled(&daemon, &id, title);
            });
        }
    }
}

/// The first line with text, its runs of white space made one space, cut at the last word
/// boundary that keeps it within [`TITLE_CHARS`] (mid-word only for a single huge word),
/// with `…` marking a cut. `None` for a message of white space.
pub fn first_line(text: &str) -> Option<String> {
    let line = text.lines().find(|line| !line.trim().is_empty())?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let whole = words.join(" ");
    if whole.chars().count() <= TITLE_CHARS {
        return Some(whole);
    }
    // Room for the ellipsis.
    let room = TITLE_CHARS - 1;
    let mut title = String::new();
    for word in &words {
        let wanted = title.chars().count() + usize::from(!title.is_empty()) + word.chars().count();
        if wanted > room {
            break;
        }
        if !title.is_empty() {
            title.push(' ');
        }
        title.push_str(word);
    }
    if title.is_empty() {
        title = whole.chars().take(room).collect();
    }
    // A cut after a comma or colon reads better without it.
    let title = title.trim_end_matches([',', ';', ':', '-']);
    Some(format!("{title}…"))
}

/// A model's answer made a title: its first line without the quotes, markdown or `Title:`
/// models like to add; `None` when nothing is left.
fn clean(answer: &str) -> Option<String> {
    let line = answer.lines().find(|line| !line.trim().is_empty())?;
    let line = line.trim().trim_start_matches('#').trim();
    let line = ["Title:", "title:", "TITLE:"]
        .iter()
        .find_map(|prefix| line.strip_prefix(prefix))
        .unwrap_or(line);
    let line = line.trim_matches(|c: char| {
        c.is_whitespace() || matches!(c, '"' | '\'' | '*' | '`' | '“' | '”' | '.')
    });
    first_line(line)
}

/// Asks `model` for a title for a conversation opening with `prompt`, through the same
/// request path (key, headers, retries, cap) as an answer; only the first line is read.
async fn ask(daemon: &Daemon, model: &str, prompt: String) -> Result<String, String> {
    let (provider, id) = daemon.chat.resolve(daemon, model)?;
    let key = provider.key.clone()?;
    let request = llm::ChatRequest {
        model: id.clone(),
        system: Some(INSTRUCTION.to_string()),
        messages: vec![llm::ChatMessage::text(llm::Role::User, prompt)],
        max_tokens: provider.max_tokens(&id, &daemon.config.chat),
        tools: Vec::new(),
    };
    let mut answer = String::new();
    let mut failed = None;
    let perform = |outputs: Vec<Output>| {
        for output in outputs {
            match output {
                Output::Append {
                    kind: PartKind::Text,
                    text,
                    ..
                } => answer.push_str(&text),
                Output::Finish(Ending {
                    outcome: Outcome::Failed(why),
                    ..
                }) => failed = Some(why),
                _ => {}
            }
        }
        // A title is one short line: a model that goes on is not waited for.
        let done = answer.trim_start().contains('\n') || answer.chars().count() > 4 * TITLE_CHARS;
        if done {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    // Nobody waits on a title, so its retries are not announced, and nothing cancels it.
    relay::stream(
        daemon,
        &provider,
        &key,
        &request,
        std::future::pending(),
        perform,
    )
    .await;
    match failed {
        Some(why) => Err(why),
        None => clean(&answer).ok_or("an empty title".into()),
    }
}

/// Writes `title` on session `id` if it still has none: a rename, or a session deleted,
/// while a model was asked, is left alone.
fn set_if_untitled(daemon: &Daemon, id: &str, title: Option<String>) {
    let Some(title) = title else {
        return;
    };
    let mut state = daemon.state();
    let Some(session) = state.sessions().iter().find(|s| s.id == id) else {
        return;
    };
    if session.title.is_some() {
        return;
    }
    let session = SessionInfo {
        title: Some(title),
        ..session.clone()
    };
    if let Err(err) = state.save_session(session) {
        tracing::warn!("cannot title session {id}: {}", err.message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_is_the_first_line_with_text() {
        assert_eq!(
            first_line("\n  why is my   loss NaN?\nat step 2000").as_deref(),
            Some("why is my loss NaN?")
        );
        assert_eq!(first_line(" \n\t\n"), None);
        assert_eq!(first_line(""), None);
    }

    #[test]
    fn a_long_first_line_is_cut_at_a_word_within_sixty_characters() {
        let line = "please explain why the validation loss of my transformer diverges after the \
                    learning rate warmup ends";
        let title = first_line(line).unwrap();
        assert_eq!(
            title,
            "please explain why the validation loss of my transformer…"
        );
        assert!(title.chars().count() <= TITLE_CHARS);
        assert!(line.starts_with(title.trim_end_matches('…')));

        let word = "x".repeat(100);
        let title = first_line(&word).unwrap();
        assert_eq!(
            title.chars().count(),
            TITLE_CHARS,
            "one huge word is cut mid-word"
        );

        let wide = "損失が発散する理由 ".repeat(10);
        let title = first_line(&wide).unwrap();
        assert!(title.chars().count() <= TITLE_CHARS, "{title}");
        assert!(title.ends_with('…'));

        let exact = "a".repeat(TITLE_CHARS);
        assert_eq!(first_line(&exact).unwrap(), exact, "60 characters fit");
        assert_eq!(
            first_line(&format!("{}: the rest of it", "b".repeat(56))).unwrap(),
            format!("{}…", "b".repeat(56)),
            "no comma before the ellipsis"
        );
    }

    #[test]
    fn a_models_answer_loses_its_decoration() {
        assert_eq!(
            clean("\"Diverging Loss at Step 2000.\"\n").as_deref(),
            Some("Diverging Loss at Step 2000")
        );
        assert_eq!(clean("## Title: **NaN loss**").as_deref(), Some("NaN loss"));
        assert_eq!(
            clean("\n\nLoss spikes\nmore").as_deref(),
            Some("Loss spikes")
        );
        assert_eq!(clean("\"\""), None);
        assert_eq!(clean(""), None);
    }
}
