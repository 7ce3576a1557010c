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

/// Every routed path and method is in the document, with the access the
/// route table gives it, and the document has nothing the router lacks.
/// (HEAD is not an OpenAPI operation: it follows GET.)
fn assert_the_document_is_the_route_table(doc: &Value) {
    use boxoffice::http::api::route_table::{Access, ROUTES};
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            if !["get", "put", "post", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            documented.insert((path.clone(), method.to_uppercase()));
            let schemes: Vec<&str> = operation["security"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_object())
                .flat_map(|s| s.keys().map(String::as_str))
                .collect();
            let route = ROUTES
                .iter()
                .find(|r| r.path == path)
                .unwrap_or_else(|| panic!("{path} is documented but not routed"));
            let access = route
                .access(&method.to_uppercase())
                .unwrap_or_else(|| panic!("{method} {path} is documented but not routed"));
            let expected: &[&str] = match access {
                Access::Public => &[],
                Access::Customer => &["customer"],
                Access::Organiser => &["organiser"],
            };
            assert_eq!(schemes, expected, "security of {method} {path}");
        }
    }
    for route in ROUTES {
        for operation in route.operations {
            if operation.method == "HEAD" {
                continue;
            }
            assert!(
                documented.contains(&(route.path.to_string(), operation.method.to_string())),
                "{} {} is routed but not documented",
                operation.method,
                route.path
            );
        }
    }
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
    assert_the_document_is_the_route_table(&doc);
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
            boxoffice::http::api::dto::is_new_user_id(candidate),
            "{candidate:?}"
        );
    }
    app.stop().await;
}
