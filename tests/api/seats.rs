//! Reserved seating (contract v4): seated creates, exact seats, best
//! available, the map, blocking, the queue at a seated event, errors, and
//! seats across restarts of the real binary.

use futures_util::StreamExt;
use nix::sys::signal::Signal;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use std::collections::BTreeMap;
use std::time::Duration;

use crate::helpers::{assert_error, spawn_app, spawn_app_with, TestApp};
use crate::live::Reader;
use crate::process::{request, Server};

/// Stalls (standard): A of 20 seats with a gap after 10, B of 22;
/// Balcony (premium): 8 rows of 30.
fn hall() -> Value {
    json!({"name": "Hall", "seating": {"sections": [
        {"name": "Stalls", "category": "standard",
         "rows": [{"name": "A", "seats": 20, "gapsAfter": [10]}, {"name": "B", "seats": 22}]},
        {"name": "Balcony", "category": "premium", "rowCount": 8, "seatsPerRow": 30}]}})
}

async fn create_hall(app: &TestApp) -> u64 {
    let (status, body) = app.post("/api/events", hall()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["event"]["id"].as_u64().expect("id")
}

async fn put(app: &TestApp, event: u64, user: &str, body: Option<Value>) -> (StatusCode, Value) {
    app.call(
        Method::PUT,
        &format!("/api/events/{event}/bookings/{user}"),
        body,
    )
    .await
}

fn seats_of(booking: &Value) -> Vec<String> {
    booking["seats"]
        .as_array()
        .unwrap_or_else(|| panic!("seats in {booking}"))
        .iter()
        .map(|s| s.as_str().expect("seat id").to_string())
        .collect()
}

/// The `states` of row `row` of section `section` of a map.
fn row_states(map: &Value, section: usize, row: usize) -> String {
    map["sections"][section]["rows"][row]["states"]
        .as_str()
        .unwrap_or_else(|| panic!("states in {map}"))
        .to_string()
}

#[actix_web::test]
async fn a_seated_event_sells_exact_and_best_available_seats_and_shows_its_map() {
    let app = spawn_app().await;
    let (status, created) = app.post("/api/events", hall()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let event = created["event"]["id"].as_u64().expect("id");
    assert_eq!(created["event"]["total_tickets"], 20 + 22 + 8 * 30);
    assert_eq!(created["event"]["seated"], true);
    assert_eq!(created["event"]["blocked_seats"], 0);

    // Best available: row A's middle block, on the near side of its gap.
    let (status, a) = put(&app, event, "alice", Some(json!({"quantity": 4}))).await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(
        seats_of(&a["booking"]),
        ["Stalls-A-7", "Stalls-A-8", "Stalls-A-9", "Stalls-A-10"]
    );
    // Exact seats, listed in map order whatever order they were asked in.
    let (status, b) = put(
        &app,
        event,
        "bob",
        Some(json!({"seats": ["Stalls-A-2", "Stalls-A-1"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(seats_of(&b["booking"]), ["Stalls-A-1", "Stalls-A-2"]);
    // Asked again: the same booking; other seats: refused.
    let again = put(
        &app,
        event,
        "bob",
        Some(json!({"seats": ["Stalls-A-1", "Stalls-A-2"]})),
    )
    .await;
    assert_eq!(again.0, StatusCode::OK, "{}", again.1);
    assert_eq!(again.1["booking"]["id"], b["booking"]["id"]);
    let other = put(&app, event, "bob", Some(json!({"seats": ["Stalls-A-3"]}))).await;
    assert_error(&other, StatusCode::CONFLICT, "BOOKING_EXISTS");
    // A taken seat: 409 naming it, and nothing changes.
    let taken = put(
        &app,
        event,
        "carol",
        Some(json!({"seats": ["Stalls-A-3", "Stalls-A-2"]})),
    )
    .await;
    assert_error(&taken, StatusCode::CONFLICT, "SEATS_UNAVAILABLE");
    assert_eq!(taken.1["seats"], json!(["Stalls-A-2"]));
    assert_eq!(
        app.get(&format!("/api/events/{event}/bookings/carol"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    // A category, and seats one by one.
    let (_, d) = put(
        &app,
        event,
        "dave",
        Some(json!({"quantity": 2, "category": "premium"})),
    )
    .await;
    assert_eq!(seats_of(&d["booking"]), ["Balcony-1-15", "Balcony-1-16"]);
    let (_, f) = put(
        &app,
        event,
        "fred",
        Some(json!({"quantity": 3, "together": false})),
    )
    .await;
    assert_eq!(
        seats_of(&f["booking"]),
        ["Stalls-A-11", "Stalls-A-12", "Stalls-A-13"]
    );
    // No body: one seat, best available.
    let (_, g) = put(&app, event, "gina", None).await;
    assert_eq!(seats_of(&g["booking"]).len(), 1);
    // The seed route books seats too.
    let (status, h) = app
        .post(
            "/api/book",
            json!({"eventId": event, "userId": "hal", "seats": ["Stalls-B-22"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{h}");
    assert_eq!(seats_of(&h["booking"]), ["Stalls-B-22"]);

    let (status, map) = app.get(&format!("/api/events/{event}/seats")).await;
    assert_eq!(status, StatusCode::OK, "{map}");
    assert_eq!(map["event_id"], event);
    assert!(map["index"].as_u64().is_some_and(|i| i > 0), "{map}");
    assert_eq!(map["sections"][0]["rows"][0]["gaps_after"], json!([10]));
    assert_eq!(map["sections"][0]["rows"][1]["gaps_after"], json!([]));
    assert_eq!(map["sections"][1]["rows"][7]["name"], "8");
    // Gina's one seat: 14, the nearest to the middle that leaves no seat
    // alone (6 is farther).
    assert_eq!(seats_of(&g["booking"]), ["Stalls-A-14"]);
    assert_eq!(row_states(&map, 0, 0), "bbffffbbbbbbbbffffff");
    assert_eq!(row_states(&map, 0, 1), format!("{}b", "f".repeat(21)));
    let status = app.get(&format!("/api/events/{event}")).await.1;
    assert_eq!(
        status["event"]["available_tickets"],
        282 - 4 - 2 - 2 - 3 - 1 - 1
    );
    // The map never says whose a seat is.
    assert!(!map.to_string().contains("alice"));
    // gzip for a client that asks for it, plain for one that does not.
    let url = format!("{}/api/events/{event}/seats", app.base);
    let zipped = app
        .client
        .get(&url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("sent");
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let bytes = zipped.bytes().await.expect("body");
    assert_eq!(bytes[..2], [0x1f, 0x8b], "a gzip stream");
    let plain = app.client.get(&url).send().await.expect("sent");
    assert!(plain.headers().get("content-encoding").is_none());

    // The body is made once per change: the same bytes until the next
    // change, which the next read shows.
    let plain = plain.bytes().await.expect("body");
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut unzipped)
        .expect("gunzips");
    assert_eq!(unzipped, plain, "the same map, compressed");
    // A client that refuses every coding still gets the map, plain.
    let refusing = app
        .client
        .get(&url)
        .header("accept-encoding", "identity;q=0, gzip;q=0")
        .send()
        .await
        .expect("sent");
    assert_eq!(refusing.status(), StatusCode::OK);
    assert!(refusing.headers().get("content-encoding").is_none());
    assert_eq!(refusing.bytes().await.expect("body"), plain);
    let again = app.client.get(&url).send().await.expect("sent");
    assert_eq!(again.bytes().await.expect("body"), plain);
    let cancelled = app
        .call(
            Method::DELETE,
            &format!("/api/events/{event}/bookings/gina"),
            None,
        )
        .await;
    assert_eq!(cancelled.0, StatusCode::OK, "{}", cancelled.1);
    let (_, after) = app.get(&format!("/api/events/{event}/seats")).await;
    assert_eq!(row_states(&after, 0, 0), "bbffffbbbbbbbfffffff");
    assert!(after["index"].as_u64() > map["index"].as_u64(), "{after}");
}

#[actix_web::test]
async fn bad_seats_and_maps_are_refused_with_the_field_and_change_nothing() {
    let app = spawn_app().await;
    let event = create_hall(&app).await;
    let bad = put(&app, event, "x", Some(json!({"seats": ["Stalls-Q-1"]}))).await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    assert_eq!(bad.1["details"][0]["field"], "seats");
    assert!(bad.1["details"][0]["message"]
        .as_str()
        .expect("message")
        .contains("Stalls-Q-1"));
    for body in [
        json!({"seats": []}),
        json!({"seats": ["Stalls-A-1", "Stalls-A-1"]}),
        json!({"seats": ["Stalls-A-1"], "quantity": 2}),
        json!({"seats": ["Stalls-A-0"]}),
        json!({"seats": "Stalls-A-1"}),
        json!({"quantity": 1, "category": "royal box"}),
    ] {
        let got = put(&app, event, "x", Some(body.clone())).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    }
    let eleven: Vec<String> = (1..=11).map(|n| format!("Stalls-B-{n}")).collect();
    let over = put(&app, event, "x", Some(json!({"seats": eleven}))).await;
    assert_error(&over, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    assert_eq!(
        app.get(&format!("/api/events/{event}/bookings/x")).await.0,
        StatusCode::NOT_FOUND
    );

    // An unseated event: seats are 409, category and together are ignored.
    let plain = app.create_event(3).await;
    let seats = put(&app, plain, "y", Some(json!({"seats": ["Stalls-A-1"]}))).await;
    assert_error(&seats, StatusCode::CONFLICT, "NOT_SEATED");
    assert_error(
        &app.get(&format!("/api/events/{plain}/seats")).await,
        StatusCode::CONFLICT,
        "NOT_SEATED",
    );
    let (status, y) = put(
        &app,
        plain,
        "y",
        Some(json!({"quantity": 2, "together": false, "category": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{y}");
    assert_eq!(y["booking"]["seats"], Value::Null);
    assert_eq!(
        app.get(&format!("/api/events/{plain}")).await.1["event"]["seated"],
        false
    );
    assert_error(
        &app.get("/api/events/999/seats").await,
        StatusCode::NOT_FOUND,
        "EVENT_NOT_FOUND",
    );

    // Maps that break a rule.
    let section = |extra: Value| {
        let mut s = json!({"name": "S", "rows": [{"name": "A", "seats": 4}]});
        for (k, v) in extra.as_object().expect("object") {
            s[k] = v.clone();
        }
        json!({"seating": {"sections": [s]}})
    };
    for (body, field) in [
        (section(json!({"name": "S-1"})), "seating.sections[0].name"),
        (
            section(json!({"rowCount": 2, "seatsPerRow": 3})),
            "seating.sections[0]",
        ),
        (
            section(json!({"rows": [{"name": "A", "seats": 4, "gapsAfter": [4]}]})),
            "seating.sections[0].rows[0].gapsAfter",
        ),
        (
            section(json!({"rows": [{"name": "A", "seats": 1}, {"name": "A", "seats": 1}]})),
            "seating.sections[0].rows[1].name",
        ),
        (
            section(json!({"rows": [{"name": "A", "seats": 0}]})),
            "seating.sections[0].rows[0].seats",
        ),
        (
            section(json!({"rows": [{"name": "A", "seats": -1}]})),
            "seating.sections[0].rows[0].seats",
        ),
        (json!({"seating": {"sections": []}}), "seating.sections"),
        (
            json!({"totalTickets": 5, "seating": {"sections": [{"name": "S", "rowCount": 1, "seatsPerRow": 4}]}}),
            "totalTickets",
        ),
    ] {
        let got = app.post("/api/events", body.clone()).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
        assert_eq!(got.1["details"][0]["field"], field, "{body}: {}", got.1);
    }
    // totalTickets may be given when it is the seat count.
    let same = app
        .post("/api/events", json!({"totalTickets": 4, "seating": {"sections": [{"name": "S", "rowCount": 1, "seatsPerRow": 4}]}}))
        .await;
    assert_eq!(same.0, StatusCode::CREATED, "{}", same.1);
    // Raising (or any change of) totalTickets at a seated event is refused.
    let raised = app
        .call(
            Method::PATCH,
            &format!("/api/events/{event}"),
            Some(json!({"totalTickets": 300})),
        )
        .await;
    assert_error(&raised, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
}

#[actix_web::test]
async fn seat_limits_come_from_configuration_and_a_map_may_have_a_large_body() {
    let app = spawn_app_with(|s| s.limits.max_seats_per_event = 100).await;
    let big = json!({"seating": {"sections": [{"name": "S", "rowCount": 11, "seatsPerRow": 10}]}});
    let got = app.post("/api/events", big).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    assert_eq!(got.1["details"][0]["field"], "seating");
    // A row count past the limit is refused before any row is made.
    let huge = json!({"seating": {"sections": [{"name": "S", "rowCount": 4_000_000_000u32, "seatsPerRow": 1}]}});
    assert_error(
        &app.post("/api/events", huge).await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_FAILED",
    );

    // Over max_body_bytes (16 KiB): a map may be, another create may not.
    let app = spawn_app().await;
    let rows: Vec<Value> = (0..1200)
        .map(|r| json!({"name": format!("R{r}"), "seats": 10}))
        .collect();
    let (status, body) = app
        .post(
            "/api/events",
            json!({"seating": {"sections": [{"name": "S", "rows": rows}]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["event"]["total_tickets"], 12_000);
    let padded = json!({"totalTickets": 1, "name": "x", "padding": "y".repeat(20_000)});
    assert_error(
        &app.post("/api/events", padded).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
    );
}

#[actix_web::test]
async fn blocking_takes_seats_off_sale_and_unblocking_serves_the_queue_in_order() {
    let app = spawn_app().await;
    let (_, created) = app
        .post(
            "/api/events",
            json!({"seating": {"sections": [{"name": "S", "rows": [{"name": "A", "seats": 4}]}]}}),
        )
        .await;
    let event = created["event"]["id"].as_u64().expect("id");
    let path = format!("/api/events/{event}/seats");
    let patch = |body: Value| app.call(Method::PATCH, &path, Some(body));
    let (status, blocked) = patch(json!({"block": ["S-A-1", "S-A-2"]})).await;
    assert_eq!(status, StatusCode::OK, "{blocked}");
    assert_eq!(blocked["event"]["blocked_seats"], 2);
    assert_eq!(blocked["event"]["available_tickets"], 2);
    assert_eq!(blocked["promotions"], json!([]));
    // Two seats left, together: a pair takes them; the next pair waits,
    // and a single behind it waits too.
    let (_, a) = put(&app, event, "a", Some(json!({"quantity": 2}))).await;
    assert_eq!(seats_of(&a["booking"]), ["S-A-3", "S-A-4"]);
    let (_, b) = put(&app, event, "b", Some(json!({"quantity": 2}))).await;
    assert_eq!(b["booking"]["status"], "waiting");
    assert_eq!(b["booking"]["seats"], json!([]));
    let (_, c) = put(&app, event, "c", None).await;
    assert_eq!(c["booking"]["waiting_position"], 2);
    // Blocking a booked seat: 409 naming it, nothing changes.
    let sold = patch(json!({"block": ["S-A-3", "S-A-1"]})).await;
    assert_error(&sold, StatusCode::CONFLICT, "SEATS_UNAVAILABLE");
    assert_eq!(sold.1["seats"], json!(["S-A-3"]));
    let both = patch(json!({"block": ["S-A-1"], "unblock": ["S-A-1"]})).await;
    assert_error(&both, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    // Unblocking serves the head first, then the one behind.
    let (status, freed) = patch(json!({"unblock": ["S-A-1", "S-A-2"]})).await;
    assert_eq!(status, StatusCode::OK, "{freed}");
    let promoted: Vec<&str> = freed["promotions"]
        .as_array()
        .expect("promotions")
        .iter()
        .map(|p| p["user_id"].as_str().expect("user"))
        .collect();
    assert_eq!(promoted, ["b"]);
    assert_eq!(seats_of(&freed["promotions"][0]), ["S-A-1", "S-A-2"]);
    assert_eq!(
        app.get(&format!("/api/events/{event}/bookings/c")).await.1["booking"]["status"],
        "waiting"
    );
    // Lowering frees the seats after the first n, at once, to the queue.
    let lowered = app
        .call(
            Method::PATCH,
            &format!("/api/events/{event}/bookings/b"),
            Some(json!({"quantity": 1})),
        )
        .await;
    assert_eq!(lowered.0, StatusCode::OK, "{}", lowered.1);
    assert_eq!(seats_of(&lowered.1["booking"]), ["S-A-1"]);
    assert_eq!(seats_of(&lowered.1["promotions"][0]), ["S-A-2"]);
    let (_, map) = app.get(&format!("/api/events/{event}/seats")).await;
    assert_eq!(row_states(&map, 0, 0), "bbbb");
    // A cancelled booking keeps its last seats; the seats are free.
    let (_, cancelled) = app
        .call(
            Method::DELETE,
            &format!("/api/events/{event}/bookings/a"),
            None,
        )
        .await;
    assert_eq!(seats_of(&cancelled["booking"]), ["S-A-3", "S-A-4"]);
    let (_, map) = app.get(&format!("/api/events/{event}/seats")).await;
    assert_eq!(row_states(&map, 0, 0), "bbff");
    // The feed carries the seats of each booking.
    let (_, feed) = app.get("/api/changes").await;
    let last = feed["items"]
        .as_array()
        .expect("items")
        .last()
        .expect("an item")
        .clone();
    assert_eq!(
        last["booking"]["seats"],
        json!(["S-A-3", "S-A-4"]),
        "{last}"
    );
}

/// Seats come back exactly after SIGKILL (from the journal) and after
/// SIGTERM (from the final snapshot, format 7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_survive_sigkill_and_sigterm_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let http = reqwest::Client::new();
    let server = Server::start(dir.path());
    let call = |base: &str, method: Method, path: &str, body: Option<Value>| {
        request(&http, method, format!("{base}{path}"), body)
    };
    let (status, created) = call(&server.base, Method::POST, "/api/events", Some(hall())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    for (user, body) in [
        ("a", json!({"quantity": 4})),
        ("b", json!({"seats": ["Balcony-8-30"]})),
        ("c", json!({"quantity": 3, "together": false})),
    ] {
        let (status, got) = call(
            &server.base,
            Method::PUT,
            &format!("/api/events/1/bookings/{user}"),
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{got}");
    }
    let (status, _) = call(
        &server.base,
        Method::PATCH,
        "/api/events/1/seats",
        Some(json!({"block": ["Stalls-B-1"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let map = |base: String| {
        let http = http.clone();
        async move {
            let (status, map) = request(
                &http,
                Method::GET,
                format!("{base}/api/events/1/seats"),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{map}");
            let (_, a) = request(
                &http,
                Method::GET,
                format!("{base}/api/events/1/bookings/a"),
                None,
            )
            .await;
            (map["sections"].clone(), a["booking"].clone())
        }
    };
    let before = map(server.base.clone()).await;
    drop(server.stop_with(Signal::SIGKILL));
    let server = Server::start(dir.path());
    assert_eq!(map(server.base.clone()).await, before, "after SIGKILL");
    let (status, log) = server.stop_with(Signal::SIGTERM);
    assert_eq!(status.code(), Some(0), "{log}");
    let server = Server::start(dir.path());
    assert_eq!(map(server.base.clone()).await, before, "after SIGTERM");
    let (status, got) = call(
        &server.base,
        Method::PUT,
        "/api/events/1/bookings/d",
        Some(json!({"seats": ["Stalls-A-7"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "a's seat is still a's: {got}");
}

/// Every seat's letter in a map body, by seat id.
fn letters(map: &Value) -> BTreeMap<String, char> {
    let mut out = BTreeMap::new();
    for section in map["sections"].as_array().expect("sections") {
        for row in section["rows"].as_array().expect("rows") {
            let states = row["states"].as_str().expect("states");
            for (n, letter) in states.chars().enumerate() {
                let id = format!(
                    "{}-{}-{}",
                    section["name"].as_str().expect("name"),
                    row["name"].as_str().expect("row"),
                    n + 1
                );
                out.insert(id, letter);
            }
        }
    }
    out
}

/// A watcher's map, kept by applying `seat_changes` to the first `seats`,
/// equals `GET .../seats` once a burst of bookings is over; the burst is
/// coalesced into a few messages whose ids grow.
#[actix_web::test]
async fn the_live_map_follows_every_change_coalesced() {
    let app = spawn_app().await;
    let (_, created) = app
        .post(
            "/api/events",
            json!({"seating": {"sections": [{"name": "S", "rowCount": 10, "seatsPerRow": 30}]}}),
        )
        .await;
    let event = created["event"]["id"].as_u64().expect("id");
    let mut stream = Reader::open(&app, &format!("/api/events/{event}/seats/live")).await;
    let first = stream
        .next(Duration::from_secs(2))
        .await
        .expect("the whole map");
    assert_eq!(first.event, "seats");
    assert_eq!(first.data["event_id"], event);
    let mut watched = letters(&first.data);
    assert_eq!(watched.len(), 300);
    let users: Vec<String> = (0..120).map(|i| format!("u{i}")).collect();
    futures_util::stream::iter(&users)
        .for_each_concurrent(32, |user| {
            let app = &app;
            async move {
                let (status, body) = put(app, event, user, Some(json!({"quantity": 2}))).await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
        })
        .await;
    let (_, map) = app.get(&format!("/api/events/{event}/seats")).await;
    let wanted = letters(&map);
    let mut ids = vec![first.id];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while watched != wanted {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let message = stream.next(left).await.unwrap_or_else(|| {
            panic!(
                "no message within 5 s; {} seats differ",
                watched
                    .iter()
                    .filter(|(k, v)| wanted.get(*k) != Some(v))
                    .count()
            )
        });
        ids.push(message.id);
        match message.event.as_str() {
            "seat_changes" => {
                assert_eq!(message.data["index"], message.id);
                for (seat, letter) in message.data["seats"].as_object().expect("seats") {
                    let letter = letter
                        .as_str()
                        .and_then(|l| l.chars().next())
                        .expect("a letter");
                    assert!(
                        watched.insert(seat.clone(), letter).is_some(),
                        "{seat} is on the map"
                    );
                }
            }
            "seats" => watched = letters(&message.data),
            other => panic!("unexpected event {other}"),
        }
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");
    assert!(ids.len() < 60, "120 bookings gave {} messages", ids.len());
    assert_eq!(wanted.values().filter(|&&l| l == 'b').count(), 240);
    app.stop().await;
}

/// A change of more seats than the whole map weighs comes as the whole
/// map; a small one as `seat_changes`.
#[actix_web::test]
async fn the_live_map_sends_whichever_message_is_shorter() {
    let app = spawn_app().await;
    let (_, created) = app
        .post(
            "/api/events",
            json!({"seating": {"sections": [{"name": "S", "rowCount": 1, "seatsPerRow": 30}]}}),
        )
        .await;
    let event = created["event"]["id"].as_u64().expect("id");
    let mut stream = Reader::open(&app, &format!("/api/events/{event}/seats/live")).await;
    let first = stream.next(Duration::from_secs(2)).await.expect("the map");
    assert_eq!(first.event, "seats");
    let path = format!("/api/events/{event}/seats");
    let every: Vec<String> = (1..=30).map(|n| format!("S-1-{n}")).collect();
    let blocked = app
        .call(Method::PATCH, &path, Some(json!({"block": every})))
        .await;
    assert_eq!(blocked.0, StatusCode::OK, "{}", blocked.1);
    let whole = stream
        .next(Duration::from_secs(5))
        .await
        .expect("a message");
    assert_eq!(whole.event, "seats", "30 changed seats outweigh the map");
    assert_eq!(row_states(&whole.data, 0, 0), "x".repeat(30));
    let one = app
        .call(Method::PATCH, &path, Some(json!({"unblock": ["S-1-7"]})))
        .await;
    assert_eq!(one.0, StatusCode::OK, "{}", one.1);
    let changes = stream
        .next(Duration::from_secs(5))
        .await
        .expect("a message");
    assert_eq!(changes.event, "seat_changes");
    assert_eq!(changes.data["seats"], json!({"S-1-7": "f"}));
    assert!(changes.id > whole.id);
    app.stop().await;
}

#[actix_web::test]
async fn a_live_map_of_nothing_is_404_and_of_an_unseated_event_409() {
    let app = spawn_app().await;
    let plain = app.create_event(3).await;
    let url = |path: &str| format!("{}{path}", app.base);
    let status = |path: &str| {
        let request = app.client.get(url(path));
        async move { request.send().await.expect("sent").status() }
    };
    assert_eq!(
        status("/api/events/77/seats/live").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(&format!("/api/events/{plain}/seats/live")).await,
        StatusCode::CONFLICT
    );
    let seated = create_hall(&app).await;
    let head = app
        .client
        .head(url(&format!("/api/events/{seated}/seats/live")))
        .send()
        .await
        .expect("sent");
    assert_eq!(head.status(), StatusCode::OK);
    assert!(head.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/event-stream"));
    let head = app
        .client
        .head(url(&format!("/api/events/{plain}/seats/live")))
        .send()
        .await
        .expect("sent");
    assert_eq!(head.status(), StatusCode::CONFLICT);
}
