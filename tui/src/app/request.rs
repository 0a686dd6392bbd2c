//! Requests the cockpit sends the daemon, as data. Each is a protocol params type (which names
//! its method and its reply type) with what its reply becomes for the cockpit; an
//! [`Effect::Request`](super::update::Effect::Request) carries one with its type erased, so the
//! link sends every request through one path and a new request is one impl here.

use std::any::Any;
use std::fmt;

use futures_util::future::BoxFuture;
use reagent::agent::{Approval, WildInfo};
use reagent::client::Client;
use reagent::model::{ModelInfo, ModelState, Recipe};
use reagent::protocol::{
    AnswerApproval, CancelChat, CleanRuns, CreateSession, Detach, IgnoreAlertsLike, LaunchModel,
    ListAlerts, ListApprovals, ListProviders, ListRecipes, ListSessions, Method, QueryMetrics,
    RemoveRuns, RenameRun, RenameSession, RerunRun, ResizeRun, RespondAlert, SendChat, SendInput,
    SessionHistory, SetSessionAgent, SetSessionModel, StartWild, StopModel, StopRun, StopWild,
    UsageQuery, WildStatus,
};
use reagent::run::{RunInfo, RunSpec};

use super::link::Replied;
use crate::sanitize;

/// A request the cockpit makes, with the reply it gets typed by its method.
pub trait Request: Method<Reply: Send> + fmt::Debug + PartialEq + Send + Sync + 'static {
    /// The reply as the message the cockpit acts on ([`super::on_message`]).
    fn replied(self, reply: Self::Reply) -> Replied;

    /// An error reply as the message the cockpit acts on: the daemon's words, unless the
    /// request knows better what the status line can hold.
    fn failed(self, error: String) -> Replied {
        Replied::Failed(error)
    }

    /// Fills in what only a client on the daemon's machine can give (its folder, its
    /// environment), as `reagent run` does; most requests have nothing to add.
    fn localize(&mut self) {}
}

/// A [`Request`] whose type is erased, so one effect type carries any of them.
pub trait ErasedRequest: fmt::Debug + Send + Sync {
    /// Sends the request now (so requests keep their order) and returns its reply, turned
    /// into what the cockpit acts on, to await later. `local`: the daemon runs on this machine.
    fn send<'a>(
        self: Box<Self>,
        client: &'a Client,
        local: bool,
    ) -> BoxFuture<'a, reagent::Result<BoxFuture<'static, Replied>>>;

    /// The request as [`Any`], to read it back as its own type.
    fn as_any(&self) -> &dyn Any;

    /// Whether `other` is the same request with the same params.
    fn same(&self, other: &dyn ErasedRequest) -> bool;
}

impl<R: Request> ErasedRequest for R {
    fn send<'a>(
        self: Box<Self>,
        client: &'a Client,
        local: bool,
    ) -> BoxFuture<'a, reagent::Result<BoxFuture<'static, Replied>>> {
        let mut params = *self;
        if local {
            params.localize();
        }
        Box::pin(async move {
            let reply = client.request(&params).await?;
            let replied: BoxFuture<'static, Replied> = Box::pin(async move {
                match reply.await {
                    Ok(reply) => params.replied(reply),
                    Err(err) => params.failed(err.to_string()),
                }
            });
            Ok(replied)
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn same(&self, other: &dyn ErasedRequest) -> bool {
        other.as_any().downcast_ref::<Self>() == Some(self)
    }
}

impl PartialEq for dyn ErasedRequest {
    fn eq(&self, other: &Self) -> bool {
        self.same(other)
    }
}

/// A reply that only says it worked: nothing for the status line.
fn quiet() -> Replied {
    Replied::Done(String::new())
}

impl Request for RunSpec {
    fn replied(self, run: RunInfo) -> Replied {
        Replied::Started(Box::new(run))
    }

    fn localize(&mut self) {
        // Like `reagent run`, a run started here works in the cockpit's folder, with its
        // environment.
        self.cwd = self.cwd.take().or_else(|| std::env::current_dir().ok());
        self.client_env = self
            .client_env
            .take()
            .or_else(|| Some(reagent::transport::process_env()));
    }
}

impl Request for StopRun {
    fn replied(self, run: RunInfo) -> Replied {
        Replied::Done(format!("stopping {}", run.label()))
    }
}

impl Request for RemoveRuns {
    fn replied(self, removed: Vec<RunInfo>) -> Replied {
        let labels: Vec<&str> = removed.iter().map(RunInfo::label).collect();
        Replied::Done(format!("removed {}", labels.join(", ")))
    }
}

impl Request for CleanRuns {
    fn replied(self, removed: Vec<RunInfo>) -> Replied {
        Replied::Done(match removed.len() {
            0 => "nothing to clean".to_string(),
            1 => "removed 1 run".to_string(),
            n => format!("removed {n} runs"),
        })
    }
}

impl Request for RerunRun {
    fn replied(self, run: RunInfo) -> Replied {
        Replied::Started(Box::new(run))
    }
}

impl Request for RenameRun {
    fn replied(self, run: RunInfo) -> Replied {
        Replied::Done(format!("{} is now {}", run.id, run.label()))
    }
}

impl Request for SendInput {
    fn replied(self, _: reagent::protocol::Ack) -> Replied {
        quiet()
    }
}

impl Request for Detach {
    fn replied(self, _: reagent::protocol::Ack) -> Replied {
        quiet()
    }
}

impl Request for ResizeRun {
    fn replied(self, _: reagent::protocol::Ack) -> Replied {
        quiet()
    }
}

impl Request for ListSessions {
    fn replied(self, sessions: Vec<reagent::chat::SessionInfo>) -> Replied {
        Replied::Sessions(sessions)
    }
}

impl Request for CreateSession {
    fn replied(self, session: reagent::chat::SessionInfo) -> Replied {
        Replied::SessionCreated(session)
    }

    fn localize(&mut self) {
        // The session's tools work in the cockpit's folder, as `reagent chat` started here.
        self.cwd = self.cwd.take().or_else(|| std::env::current_dir().ok());
    }
}

impl Request for SessionHistory {
    fn replied(self, messages: Vec<reagent::chat::MessageInfo>) -> Replied {
        Replied::History(self.session, messages)
    }
}

impl Request for SendChat {
    fn replied(self, _: reagent::chat::MessageInfo) -> Replied {
        quiet()
    }
}

impl Request for CancelChat {
    fn replied(self, _: reagent::protocol::Ack) -> Replied {
        Replied::Done("cancelled".into())
    }
}

impl Request for RenameSession {
    fn replied(self, session: reagent::chat::SessionInfo) -> Replied {
        Replied::Done(format!("{} is now {}", session.id, session.label()))
    }
}

impl Request for SetSessionModel {
    fn replied(self, session: reagent::chat::SessionInfo) -> Replied {
        Replied::Done(format!(
            "{} now talks to {}",
            session.label(),
            session.model
        ))
    }
}

impl Request for ListProviders {
    fn replied(self, providers: Vec<reagent::chat::ProviderInfo>) -> Replied {
        let models = providers.iter().flat_map(|p| {
            p.models
                .iter()
                .map(move |model| format!("{}/{model}", p.name))
        });
        Replied::Models(models.collect())
    }
}

impl Request for UsageQuery {
    fn replied(self, report: reagent::chat::UsageReport) -> Replied {
        Replied::Usage(report)
    }
}

impl Request for QueryMetrics {
    fn replied(self, reply: reagent::metrics::MetricsQueryReply) -> Replied {
        Replied::Metrics(Box::new(reply))
    }
}

impl Request for ListAlerts {
    fn replied(self, alerts: Vec<reagent::alert::AlertInfo>) -> Replied {
        Replied::Alerts(alerts)
    }
}

impl Request for RespondAlert {
    fn replied(self, reply: reagent::protocol::AlertResponse) -> Replied {
        Replied::Answered(Box::new(reply))
    }
}

impl Request for IgnoreAlertsLike {
    fn replied(self, reply: <Self as Method>::Reply) -> Replied {
        // The alerts come back as `alert` events; the reply says how many.
        Replied::Done(reply.summary())
    }
}

impl Request for reagent::protocol::GatewayLog {
    fn replied(self, requests: Vec<reagent::gateway::GatewayRequest>) -> Replied {
        Replied::Gateway(requests)
    }
}

impl Request for ListRecipes {
    fn replied(self, recipes: Vec<Recipe>) -> Replied {
        Replied::Recipes(recipes)
    }
}

impl Request for LaunchModel {
    fn replied(self, model: ModelInfo) -> Replied {
        // The models view shows the state from `model` events; the reply only says it is done.
        let name = sanitize::line(&model.name);
        Replied::Done(match model.port {
            Some(port) if model.state == ModelState::Ready => {
                format!("{name} is ready on port {port}")
            }
            _ => format!("{name} is {}", model.state),
        })
    }

    /// A failed launch's error holds the end of the server's log, many lines: the status
    /// line takes the first (the daemon's, naming the model), and the models view shows the
    /// rest with the model's reason.
    fn failed(self, error: String) -> Replied {
        let mut lines = error.lines().map(str::trim).filter(|line| !line.is_empty());
        let first = lines.next().unwrap_or("no reason given");
        let first = sanitize::line(first.trim_end_matches(':'));
        Replied::Failed(match lines.next() {
            Some(_) => format!("{first} · L shows the rest"),
            None => first.into_owned(),
        })
    }
}

impl Request for StopModel {
    fn replied(self, model: ModelInfo) -> Replied {
        let name = sanitize::line(&model.name);
        Replied::Done(match model.state {
            ModelState::Stopped => format!("stopped {name}"),
            ModelState::Cancelled => format!("cancelled the launch of {name}"),
            state => format!("{name} is {state}"),
        })
    }
}

impl Request for SetSessionAgent {
    fn replied(self, session: reagent::chat::SessionInfo) -> Replied {
        // The sessions list and the chat title follow the `session` event.
        let state = if session.agent.enabled { "on" } else { "off" };
        let label = sanitize::line(session.label());
        Replied::Done(format!("tools {state} in {label}"))
    }
}

impl Request for ListApprovals {
    fn replied(self, approvals: Vec<Approval>) -> Replied {
        Replied::Approvals(approvals)
    }
}

impl Request for AnswerApproval {
    fn replied(self, approval: Approval) -> Replied {
        Replied::ApprovalAnswered(Box::new(approval))
    }

    fn failed(self, error: String) -> Replied {
        Replied::ApprovalFailed(self.id, error)
    }
}

impl Request for StartWild {
    fn replied(self, wild: WildInfo) -> Replied {
        Replied::WildStarted(Box::new(wild), self.session.is_none())
    }

    fn localize(&mut self) {
        // A loop in a session of its own works in the cockpit's folder, as `reagent wild`
        // started here.
        if self.session.is_none() {
            self.cwd = self.cwd.take().or_else(|| std::env::current_dir().ok());
        }
    }
}

impl Request for WildStatus {
    fn replied(self, loops: Vec<WildInfo>) -> Replied {
        Replied::WildLoops(loops)
    }
}

impl Request for StopWild {
    fn replied(self, wild: WildInfo) -> Replied {
        Replied::WildStopped(Box::new(wild))
    }
}
