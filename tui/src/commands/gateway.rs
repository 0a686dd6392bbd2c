//! `reagent token create|revoke`, `tokens` and `gateway log`: who may use the daemon's HTTP
//! face, and what they did with it.
//!
//! `token create` prints the token once: the daemon keeps only its hash, so a lost token is
//! revoked and replaced, never recovered.

use std::process::ExitCode;

use reagent::gateway::GatewayRequest;
use reagent::protocol::{CreateToken, GatewayLog, ListTokens, RevokeToken};
use reagent::time::{format_duration_ms, now_ms, utc_date, utc_time};
use reagent::token::TokenInfo;

use super::{Ctx, aligned, print_json};
use crate::cli::{GatewayAction, TokenAction};
use crate::sanitize;

/// `reagent token create|revoke`
pub async fn token(ctx: &Ctx, action: TokenAction) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    match action {
        TokenAction::Create { name, scopes, json } => {
            let created = client.call(&CreateToken { name, scopes }).await?;
            if json {
                print_json(&created)?;
            } else {
                let scopes: Vec<&str> = created.scopes.iter().map(|s| s.as_str()).collect();
                eprintln!(
                    "token {} ({}); shown once, keep it safe:",
                    sanitize::line(&created.name),
                    scopes.join(", ")
                );
                println!("{}", created.token);
            }
        }
        TokenAction::Revoke { name } => {
            client.call(&RevokeToken { name: name.clone() }).await?;
            println!("revoked token {}", sanitize::line(&name));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `reagent tokens [--json]`
pub async fn tokens(ctx: &Ctx, json: bool) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let tokens = client.call(&ListTokens {}).await?;
    if json {
        print_json(&tokens)?;
    } else if tokens.is_empty() {
        println!("no tokens: create one with `reagent token create NAME`");
    } else {
        print!("{}", tokens_table(&tokens));
    }
    Ok(ExitCode::SUCCESS)
}

fn tokens_table(tokens: &[TokenInfo]) -> String {
    let mut rows = vec![vec!["NAME".into(), "SCOPES".into(), "CREATED".into()]];
    for token in tokens {
        let scopes: Vec<&str> = token.scopes.iter().map(|s| s.as_str()).collect();
        rows.push(vec![
            token.name.clone(),
            scopes.join(","),
            format!(
                "{} {}",
                utc_date(token.created_at),
                utc_time(token.created_at)
            ),
        ]);
    }
    aligned(&rows)
}

/// `reagent gateway log [--json] [--token NAME] [--since DUR] [--limit N]`
pub async fn gateway(ctx: &Ctx, action: GatewayAction) -> anyhow::Result<ExitCode> {
    let GatewayAction::Log {
        json,
        token,
        since,
        limit,
    } = action;
    let since_ms = since.map(|since| now_ms() - i64::try_from(since).unwrap_or(i64::MAX / 2));
    let (client, _) = ctx.connect().await?;
    let log = client
        .call(&GatewayLog {
            token,
            since_ms,
            limit,
        })
        .await?;
    if json {
        print_json(&log)?;
    } else if log.is_empty() {
        println!("no gateway requests");
    } else {
        print!("{}", log_table(&log));
    }
    Ok(ExitCode::SUCCESS)
}

fn log_table(log: &[GatewayRequest]) -> String {
    let header = [
        "TIME", "TOKEN", "ROUTE", "MODEL", "STATUS", "TTFB", "DURATION", "IN", "OUT", "COST",
        "OUTCOME",
    ];
    let mut rows = vec![header.map(String::from).to_vec()];
    let or_dash = |value: Option<String>| value.unwrap_or_else(|| "-".into());
    for row in log {
        let outcome = match &row.detail {
            Some(detail) => format!("{} ({detail})", row.outcome.as_str()),
            None => row.outcome.as_str().to_string(),
        };
        rows.push(vec![
            format!("{} {}", utc_date(row.ts), utc_time(row.ts)),
            row.token.clone(),
            row.route.as_str().into(),
            row.model.clone(),
            row.status.to_string(),
            or_dash(row.ttfb_ms.map(|ms| format_duration_ms(ms.round() as i64))),
            format_duration_ms(row.duration_ms.round() as i64),
            or_dash(row.tokens_in.map(|n| n.to_string())),
            or_dash(row.tokens_out.map(|n| n.to_string())),
            or_dash(row.cost.map(|c| format!("${c:.4}"))),
            outcome,
        ]);
    }
    aligned(&rows)
}

#[cfg(test)]
mod tests {
    use reagent::gateway::{GatewayOutcome, GatewayRoute};

    use super::*;

    #[test]
    fn the_log_table_shows_dashes_for_what_is_unknown() {
        let row = GatewayRequest {
            id: 1,
            ts: 0,
            token: "nb".into(),
            route: GatewayRoute::Provider,
            model: "mock/m".into(),
            status: 529,
            ttfb_ms: None,
            duration_ms: 12.0,
            tokens_in: None,
            tokens_out: None,
            cost: None,
            outcome: GatewayOutcome::UpstreamError,
            detail: Some("529 overloaded_error".into()),
            body: None,
        };
        let table = log_table(&[row]);
        assert!(
            table.contains("upstream_error (529 overloaded_error)"),
            "{table}"
        );
        assert!(table.contains("1970-01-01 00:00:00 UTC"), "{table}");
    }
}
