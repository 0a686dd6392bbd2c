//! The chat service's table: every session, and the answers being written right now (the
//! truth until they end; the store has their last persisted state).

use std::collections::HashMap;

use reagent::chat::{MessageInfo, Part, PartKind, SessionInfo};
use reagent::protocol::{EventKind, RpcError};

use tokio::sync::broadcast;

use crate::daemon::State;
use crate::table::Table;

/// Answers that may end while a waiter is busy before it misses one (it then looks them up).
const ENDED_BACKLOG: usize = 64;

/// Every session, oldest first, and the streaming answers by message id.
pub struct Sessions {
    table: Table<SessionInfo>,
    streaming: HashMap<String, MessageInfo>,
    /// Every answer as it ends, for those inside the daemon that wait for one (the judge).
    ended: broadcast::Sender<MessageInfo>,
}

impl Sessions {
    /// The sessions loaded from the store; nothing streams yet.
    pub fn new(sessions: Vec<SessionInfo>) -> Self {
        Self {
            table: Table::new(sessions),
            streaming: HashMap::new(),
            ended: broadcast::channel(ENDED_BACKLOG).0,
        }
    }
}

impl State {
    /// Every chat session, oldest first.
    pub fn sessions(&self) -> &[SessionInfo] {
        self.chat.table.all()
    }

    /// Finds a session by id, title or unique id prefix.
    pub fn resolve_session(&self, query: &str) -> Result<&SessionInfo, RpcError> {
        self.chat.table.resolve(query)
    }

    /// Commits a new or changed session, then broadcasts it.
    pub fn save_session(&mut self, session: SessionInfo) -> Result<SessionInfo, RpcError> {
        self.bus.emit(EventKind::Session {
            session: session.clone(),
        })?;
        self.chat.table.upsert(session.clone());
        Ok(session)
    }

    /// Deletes a session and its messages, then broadcasts that.
    pub fn delete_session(&mut self, id: &str) -> Result<(), RpcError> {
        self.bus
            .emit(EventKind::SessionDeleted { id: id.to_string() })?;
        self.chat.table.retain(|s| s.id != id);
        self.chat
            .streaming
            .retain(|_, message| message.session != id);
        Ok(())
    }

    /// Commits a message's new state and broadcasts it; a streaming one is also kept in memory
    /// as the truth clients attach to.
    pub fn save_message(&mut self, message: MessageInfo) -> Result<MessageInfo, RpcError> {
        self.bus.emit(EventKind::Message {
            message: message.clone(),
        })?;
        if message.status.is_terminal() {
            self.chat.streaming.remove(&message.id);
            // Copied only for someone waiting (the judge); most answers have nobody.
            if self.chat.ended.receiver_count() > 0 {
                let _ = self.chat.ended.send(message.clone());
            }
        } else {
            self.chat
                .streaming
                .insert(message.id.clone(), message.clone());
        }
        Ok(message)
    }

    /// Hears of every answer that ends from now on. Subscribe before sending, so the end
    /// cannot come first.
    pub fn answers_ended(&self) -> broadcast::Receiver<MessageInfo> {
        self.chat.ended.subscribe()
    }

    /// A streaming answer as it stands.
    pub fn streaming(&self, id: &str) -> Option<&MessageInfo> {
        self.chat.streaming.get(id)
    }

    /// Appends streamed text to part `part` of an answer (by default the last part, or a new
    /// one when the kind changes) and broadcasts the delta. Deltas get a `seq` but are not
    /// kept for replay (thousands a second); the message's own rows are.
    pub fn append(&mut self, id: &str, part: Option<usize>, kind: PartKind, text: &str) {
        let Some(message) = self.chat.streaming.get_mut(id) else {
            return;
        };
        let index = match part {
            Some(index) if index < message.parts.len() => index,
            _ => {
                if message.parts.last().is_none_or(|p| p.kind != kind) {
                    message.parts.push(Part {
                        kind,
                        text: String::new(),
                        name: None,
                        call_id: None,
                        error: false,
                    });
                }
                message.parts.len() - 1
            }
        };
        let offset = message.parts[index].text.len();
        message.parts[index].text.push_str(text);
        let (session, message) = (message.session.clone(), message.id.clone());
        self.bus.broadcast_ephemeral(EventKind::Delta {
            session,
            message,
            part: index,
            kind,
            offset,
            text: text.to_string(),
        });
    }

    /// Starts a tool-call part in an answer; returns its index. A call the provider gave no
    /// id gets one: its result must name it, and providers refuse an empty id.
    pub fn start_tool_call(&mut self, id: &str, call_id: &str, name: &str) -> Option<usize> {
        let message = self.chat.streaming.get_mut(id)?;
        let call_id = match call_id {
            "" => format!("call_{}", crate::daemon::short_id()),
            id => id.to_string(),
        };
        message.parts.push(Part {
            kind: PartKind::ToolCall,
            text: String::new(),
            name: Some(name.to_string()),
            call_id: Some(call_id),
            error: false,
        });
        let index = message.parts.len() - 1;
        self.append(id, Some(index), PartKind::ToolCall, "");
        Some(index)
    }

    /// Rewrites a streaming answer's row without an event.
    pub fn persist_streaming(&self, id: &str) {
        if let Some(message) = self.chat.streaming.get(id)
            && let Err(err) = self.store().save_message(message)
        {
            tracing::warn!("cannot save the streaming answer {id}: {err:#}");
        }
    }

    /// One message as it stands now: streaming, or as stored.
    pub fn message(&self, id: &str) -> anyhow::Result<Option<MessageInfo>> {
        match self.chat.streaming.get(id) {
            Some(live) => Ok(Some(live.clone())),
            None => self.store().load_message(id),
        }
    }

    /// A session's messages from the store, with answers still streaming as they stand now.
    pub fn messages(&self, session: &str) -> anyhow::Result<Vec<MessageInfo>> {
        let mut messages = self.store().load_messages(session)?;
        for message in &mut messages {
            if let Some(live) = self.chat.streaming.get(&message.id) {
                *message = live.clone();
            }
        }
        Ok(messages)
    }
}
