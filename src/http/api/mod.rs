//! The API of `docs/API.md`: the route table, handlers, request and reply
//! bodies, errors, access control and the OpenAPI document. Handlers parse,
//! call the [`BoxOffice`](crate::service::BoxOffice) service and shape the
//! reply.

pub mod auth;
pub mod change_bodies;
pub(crate) mod change_stream;
pub mod dto;
pub mod error;
pub mod event_bodies;
pub mod extract;
pub(crate) mod handlers;
pub mod live;
pub(crate) mod members;
pub mod openapi;
pub mod params;
pub mod route_table;
pub mod seat_bodies;
pub mod seat_live;
pub mod seats;

use actix_web::{web, HttpRequest, ResponseError};

pub use error::ApiError;
use route_table::{paths, Route, ROUTES};

/// A resource for `route` that answers a method it does not serve with 405
/// and the `Allow` header the table gives.
fn resource(route: &Route) -> actix_web::Resource {
    let allow = actix_web::http::header::HeaderValue::from_str(&route.allow())
        .unwrap_or_else(|_| actix_web::http::header::HeaderValue::from_static(""));
    web::resource(route.path).default_service(web::to(move || {
        let allow = allow.clone();
        async move {
            let mut response = ApiError::MethodNotAllowed.error_response();
            response
                .headers_mut()
                .insert(actix_web::http::header::ALLOW, allow);
            response
        }
    }))
}

/// What serves `method` at `path`, or `None` if no handler does (the
/// route-table test then finds the 405).
fn handler(path: &str, method: &str) -> Option<actix_web::Route> {
    use handlers::*;
    use paths::*;
    let route = match method {
        "GET" => web::get(),
        "HEAD" => web::head(),
        "POST" => web::post(),
        "PUT" => web::put(),
        "PATCH" => web::patch(),
        "DELETE" => web::delete(),
        _ => return None,
    };
    // HEAD is served by the GET handler (actix sends no body for it), but
    // for the live streams, whose GET would never finish.
    let method = match (path, method) {
        (EVENT_LIVE, "HEAD") => return Some(route.to(event_live_head)),
        (BOOKING_LIVE, "HEAD") => return Some(route.to(booking_live_head)),
        (CHANGES_LIVE, "HEAD") => return Some(route.to(changes_live_head)),
        (ROOM_LIVE, "HEAD") => return Some(route.to(room_live_head)),
        (SEATS_LIVE, "HEAD") => return Some(route.to(seats::seats_live_head)),
        (_, "HEAD") => "GET",
        _ => method,
    };
    Some(match (path, method) {
        (BOOKING, "GET") | (BOOKING_STATUS, "GET") => route.to(booking_status),
        (BOOKING, "PUT") => route.to(book_path),
        (BOOKING, "PATCH") => route.to(change_quantity),
        (BOOKING, "DELETE") => route.to(cancel_path),
        (STATUS, "GET") | (EVENT, "GET") => route.to(event_status),
        (PAGE, "GET") => route.to(page),
        (HEALTH, "GET") => route.to(health),
        (READY, "GET") => route.to(ready),
        (METRICS, "GET") => route.to(metrics),
        (OPENAPI, "GET") => route.to(openapi),
        (INITIALIZE, "POST") | (EVENTS, "POST") => route.to(create_event),
        (BOOK, "POST") => route.to(book_body),
        (CANCEL, "POST") => route.to(cancel_body),
        (CONFIRM, "POST") => route.to(confirm_body),
        (EVENTS, "GET") => route.to(list_events),
        (EVENT, "PATCH") => route.to(update_event),
        (BOOKING_CONFIRM, "POST") => route.to(confirm_path),
        (EVENT_LIVE, "GET") => route.to(event_live),
        (BOOKING_LIVE, "GET") => route.to(booking_live),
        (WAITING_LIST, "GET") => route.to(waiting_list),
        (LEADER, "GET") => route.to(leader),
        (CLUSTER, "GET") => route.to(cluster),
        (MEMBER, "PUT") => route.to(members::put_member),
        (MEMBER, "DELETE") => route.to(members::delete_member),
        (CHANGES, "GET") => route.to(changes),
        (CHANGES_LIVE, "GET") => route.to(changes_live),
        (ROOM_ENTRY, "GET") => route.to(room_entry),
        (ROOM_ENTRY, "PUT") => route.to(join_room),
        (ROOM_ENTRY, "DELETE") => route.to(leave_room),
        (ROOM_LIVE, "GET") => route.to(room_live),
        (SEATS, "GET") => route.to(seats::seat_map),
        (SEATS, "PATCH") => route.to(seats::block_seats),
        (SEATS_LIVE, "GET") => route.to(seats::seats_live),
        _ => return None,
    })
}

/// Registers every route of [`ROUTES`], in its order. Each resource
/// answers a wrong method with 405 and `Allow`, and anything else falls
/// through to the app's 404.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::PathConfig::default()
            .error_handler(|e, _: &HttpRequest| ApiError::field("path", &e.to_string()).into()),
    );
    for route in ROUTES {
        let mut resource = resource(route);
        for operation in route.operations {
            match handler(route.path, operation.method) {
                Some(served) => resource = resource.route(served),
                None => log::error!(
                    "no handler for {} {}: it answers 405",
                    operation.method,
                    route.path
                ),
            }
        }
        cfg.service(resource);
    }
}

/// The app-wide fallback for unknown routes.
pub async fn not_found() -> actix_web::HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::NotFound)
}
