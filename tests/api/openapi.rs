//! `/api/openapi.json` describes what the server serves (Schemathesis in
//! `tests/contract/run.sh` checks the rest from outside).

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::spawn_app_with;

async fn document(app: &crate::helpers::TestApp) -> Value {
    let (status, doc) = app.get("/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    doc
}

fn pattern(doc: &Value, path: &str, param: &str) -> regex_lite::Regex {
    let params = doc["paths"][path]["get"]["parameters"]
        .as_array()
        .unwrap_or_else(|| panic!("parameters of {path}"));
    let p = params
        .iter()
        .find(|p| p["name"] == param)
        .unwrap_or_else(|| panic!("{param} of {path}"));
    regex_lite::Regex::new(p["schema"]["pattern"].as_str().expect("pattern")).expect("regex")
}

#[actix_web::test]
async fn every_route_is_described_with_the_configured_limits() {
    let app = spawn_app_with(|s| {
        s.limits.max_tickets_per_event = 500;
        s.limits.max_tickets_per_user = 7;
    })
    .await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    for route in boxoffice::http::metrics::ROUTE_PATTERNS {
        assert!(
            doc["paths"][route].is_object(),
            "{route} is not in the document"
        );
    }
    let create = &doc["components"]["schemas"]["CreateEventRequest"]["properties"];
    assert_eq!(create["totalTickets"]["maximum"], 500);
    assert_eq!(create["maxPerUser"]["maximum"], 7);
    let book = &doc["components"]["schemas"]["BookingRequest"]["properties"];
    assert_eq!(book["quantity"]["maximum"], 7);
    app.stop().await;
}

#[actix_web::test]
async fn the_id_patterns_accept_exactly_what_the_server_accepts() {
    let app = spawn_app_with(|_| {}).await;
    let doc = document(&app).await;
    let event = pattern(&doc, "/api/status/{eventId}", "eventId");
    for ok in [
        "1",
        "42",
        "999999999999999",
        "9007199254740991",
        "8999999999999999",
    ] {
        assert!(event.is_match(ok), "{ok}");
    }
    for bad in [
        "0",
        "01",
        "-1",
        "1.0",
        "9007199254740992",
        "9999999999999999",
        "",
    ] {
        assert!(!event.is_match(bad), "{bad}");
    }
    let user = pattern(&doc, "/api/events/{eventId}/bookings/{userId}", "userId");
    let long = "a".repeat(65);
    for candidate in [
        "alice", "a.b", "...", ".a", "a", "x@y:z-_", ".", "..", "", "a b", "é", &long,
    ] {
        assert_eq!(
            user.is_match(candidate),
            boxoffice::http::dto::is_new_user_id(candidate),
            "{candidate:?}"
        );
    }
    app.stop().await;
}
