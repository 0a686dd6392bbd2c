//! Snapshot tests of the gateway usage view: totals per token above the newest requests,
//! and the view before the log came.

use reagent::gateway::GatewayOutcome;

use super::tests::{NOW, app_with_runs, draw};
use crate::app::App;
use crate::app::gateway::tests::request;
use crate::app::state::View;

fn gateway_app() -> App {
    let mut app = app_with_runs();
    app.size = (110, 22);
    app.view = View::Gateway;
    app
}

#[test]
fn gateway_usage_by_token_with_the_newest_requests() {
    let mut app = gateway_app();
    let mut refused = request(5, "ci", NOW - 30_000, GatewayOutcome::Refused);
    refused.model = "nope".into();
    refused.route = reagent::gateway::GatewayRoute::None;
    refused.status = 400;
    refused.cost = None;
    app.gateway.requests = Some(vec![
        request(1, "alice", NOW - 3_600_000, GatewayOutcome::Ok),
        request(2, "alice", NOW - 600_000, GatewayOutcome::Ok),
        request(3, "ci", NOW - 120_000, GatewayOutcome::UpstreamError),
        request(4, "alice", NOW - 60_000, GatewayOutcome::ClientGone),
        refused,
    ]);
    let screen = draw(&app);
    assert!(screen.contains("5 requests"), "{screen}");
    assert!(
        screen.contains("launch_failed") || screen.contains("refused"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
}

#[test]
fn gateway_view_before_the_log_came() {
    let app = gateway_app();
    let screen = draw(&app);
    assert!(
        screen.contains("reading the gateway's request log"),
        "{screen}"
    );
}
