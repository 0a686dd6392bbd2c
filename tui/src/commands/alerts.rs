//! `reagent alerts [--json] [--all]`, `reagent alert respond ID CHOICE` and
//! `reagent alert ignore-like ID`.

use std::process::ExitCode;

use reagent::alert::{AlertInfo, AlertStatus};
use reagent::protocol::{IgnoreAlertsLike, ListAlerts, RespondAlert};

use super::{Ctx, aligned, print_json};
use crate::cli::AlertAction;

/// Lists open alerts (all of them with `all`), oldest first.
pub async fn list(ctx: &Ctx, json: bool, all: bool) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let query = ListAlerts {
        status: (!all).then_some(AlertStatus::Open),
        run: None,
    };
    let alerts = client.call(&query).await?;
    if json {
        print_json(&alerts)?;
    } else if alerts.is_empty() {
        println!("no {}alerts", if all { "" } else { "open " });
    } else {
        print!("{}", table(&alerts));
    }
    Ok(ExitCode::SUCCESS)
}

/// Answers an alert (printing the chat session's id for `chat`), or ignores every open
/// alert like one.
pub async fn alert(ctx: &Ctx, action: AlertAction) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    match action {
        AlertAction::Respond { id, choice } => {
            let reply = client.call(&RespondAlert { id, choice }).await?;
            match reply.session {
                Some(session) => println!("{session}"),
                None => println!("alert {} answered: {choice}", reply.alert.id),
            }
        }
        AlertAction::IgnoreLike { id } => {
            let reply = client.call(&IgnoreAlertsLike { id }).await?;
            // The metric's and the sweep's names come from a job and a user: shown, not obeyed.
            println!("{}", crate::sanitize::line(&reply.summary()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn table(alerts: &[AlertInfo]) -> String {
    let header = ["ID", "RUN", "RULE", "SEVERITY", "STEP", "STATUS", "MESSAGE"];
    let mut rows = vec![header.map(String::from).to_vec()];
    for alert in alerts {
        let status = match alert.response {
            Some(choice) => format!("{} ({choice})", alert.status),
            None => alert.status.to_string(),
        };
        rows.push(vec![
            alert.id.clone(),
            alert.run.clone(),
            alert.rule.to_string(),
            alert.severity.to_string(),
            alert.step.map_or("-".into(), |s| s.to_string()),
            status,
            alert.message.clone(),
        ]);
    }
    aligned(&rows)
}
