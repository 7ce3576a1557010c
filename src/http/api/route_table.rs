//! Every route the service serves, once: its path pattern, and for each
//! method who may call it. The router registers exactly these (and answers
//! any other method with 405 and the `Allow` this table gives), the request
//! metrics label by these patterns, and the tests hold the OpenAPI document
//! and the access checks to it. Order matters: actix tries dynamic routes in
//! order, one regex each, so the busiest come first.

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (still rate limited, except `/health` and `/ready`).
    Public,
    /// The user the path or body names (`auth.users = "jwt"`), or the
    /// organiser; anyone when `users = "trusted"`.
    Customer,
    /// The organiser's token (`auth.admin_token`), when one is set.
    Organiser,
}

/// One method of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// `GET`, `HEAD`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: &'static str,
    /// Who may call it.
    pub access: Access,
}

/// One path pattern and the methods it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The pattern, as actix matches it and as the metrics label it.
    pub path: &'static str,
    /// The methods served; any other is 405.
    pub operations: &'static [Operation],
}

impl Route {
    /// The `Allow` header of a 405 at this route.
    pub fn allow(&self) -> String {
        let methods: Vec<&str> = self.operations.iter().map(|o| o.method).collect();
        methods.join(", ")
    }

    /// Who may call `method` here, if it is served.
    pub fn access(&self, method: &str) -> Option<Access> {
        self.operations
            .iter()
            .find(|o| o.method == method)
            .map(|o| o.access)
    }
}

const fn op(method: &'static str, access: Access) -> Operation {
    Operation { method, access }
}

use Access::{Customer, Organiser, Public};

/// A readable route: `GET` and `HEAD` (actix sends no body for it).
const fn read(access: Access) -> [Operation; 2] {
    [op("GET", access), op("HEAD", access)]
}

const READ_PUBLIC: [Operation; 2] = read(Public);
const READ_CUSTOMER: [Operation; 2] = read(Customer);
const READ_ORGANISER: [Operation; 2] = read(Organiser);

/// Path patterns the handlers are attached by (and the tests name).
pub mod paths {
    /// The REST booking resource, the busiest route.
    pub const BOOKING: &str = "/api/events/{eventId}/bookings/{userId}";
    /// The seed status of an event.
    pub const STATUS: &str = "/api/status/{eventId}";
    /// The seed status of a booking.
    pub const BOOKING_STATUS: &str = "/api/booking-status/{eventId}/{userId}";
    /// The demo page.
    pub const PAGE: &str = "/";
    /// Liveness.
    pub const HEALTH: &str = "/health";
    /// Readiness.
    pub const READY: &str = "/ready";
    /// Prometheus metrics.
    pub const METRICS: &str = "/metrics";
    /// The OpenAPI document.
    pub const OPENAPI: &str = "/api/openapi.json";
    /// Seed create.
    pub const INITIALIZE: &str = "/api/initialize";
    /// Seed book.
    pub const BOOK: &str = "/api/book";
    /// Seed cancel.
    pub const CANCEL: &str = "/api/cancel";
    /// Seed confirm.
    pub const CONFIRM: &str = "/api/confirm";
    /// Events: list and create.
    pub const EVENTS: &str = "/api/events";
    /// One event: read and change.
    pub const EVENT: &str = "/api/events/{eventId}";
    /// Confirm a held booking.
    pub const BOOKING_CONFIRM: &str = "/api/events/{eventId}/bookings/{userId}/confirm";
    /// An event's live stream.
    pub const EVENT_LIVE: &str = "/api/events/{eventId}/live";
    /// A booking's live stream.
    pub const BOOKING_LIVE: &str = "/api/events/{eventId}/bookings/{userId}/live";
    /// An event's waiting list (organiser).
    pub const WAITING_LIST: &str = "/api/events/{eventId}/waiting-list";
    /// Whether this node takes changes (a proxy's health check).
    pub const LEADER: &str = "/leader";
    /// This node's place in the cluster (organiser).
    pub const CLUSTER: &str = "/api/cluster";
    /// Adding and removing a cluster member (organiser, on the leader).
    pub const MEMBER: &str = "/api/cluster/members/{nodeId}";
    /// The change feed, a page at a time (organiser).
    pub const CHANGES: &str = "/api/changes";
    /// The change feed as Server-Sent Events (organiser).
    pub const CHANGES_LIVE: &str = "/api/changes/live";
    /// A person's waiting-room entry: join, read, leave.
    pub const ROOM_ENTRY: &str = "/api/events/{eventId}/room/{userId}";
    /// A waiting-room entry's live stream.
    pub const ROOM_LIVE: &str = "/api/events/{eventId}/room/{userId}/live";
    /// A seated event's seat map; blocking seats (organiser).
    pub const SEATS: &str = "/api/events/{eventId}/seats";
    /// A seated event's seat map as Server-Sent Events.
    pub const SEATS_LIVE: &str = "/api/events/{eventId}/seats/live";
}

/// The table.
pub const ROUTES: &[Route] = &[
    Route {
        path: paths::BOOKING,
        operations: &[
            op("GET", Customer),
            op("HEAD", Customer),
            op("PUT", Customer),
            op("PATCH", Customer),
            op("DELETE", Customer),
        ],
    },
    Route {
        path: paths::STATUS,
        operations: &READ_PUBLIC,
    },
    Route {
        path: paths::BOOKING_STATUS,
        operations: &READ_CUSTOMER,
    },
    Route {
        path: paths::PAGE,
        operations: &READ_PUBLIC,
    },
    Route {
        path: paths::HEALTH,
        operations: &READ_PUBLIC,
    },
    Route {
        path: paths::READY,
        operations: &READ_PUBLIC,
    },
    Route {
        path: paths::METRICS,
        operations: &READ_ORGANISER,
    },
    Route {
        path: paths::OPENAPI,
        operations: &READ_PUBLIC,
    },
    Route {
        path: paths::INITIALIZE,
        operations: &[op("POST", Organiser)],
    },
    Route {
        path: paths::BOOK,
        operations: &[op("POST", Customer)],
    },
    Route {
        path: paths::CANCEL,
        operations: &[op("POST", Customer)],
    },
    Route {
        path: paths::CONFIRM,
        operations: &[op("POST", Customer)],
    },
    Route {
        path: paths::EVENTS,
        operations: &[op("GET", Public), op("HEAD", Public), op("POST", Organiser)],
    },
    Route {
        path: paths::EVENT,
        operations: &[
            op("GET", Public),
            op("HEAD", Public),
            op("PATCH", Organiser),
        ],
    },
    Route {
        path: paths::BOOKING_CONFIRM,
        operations: &[op("POST", Customer)],
    },
    Route {
        path: paths::EVENT_LIVE,
        operations: &READ_PUBLIC,
    },
    Route {
        path: paths::BOOKING_LIVE,
        operations: &READ_CUSTOMER,
    },
    Route {
        path: paths::WAITING_LIST,
        operations: &READ_ORGANISER,
    },
    Route {
        path: paths::LEADER,
        operations: &READ_PUBLIC,
    },
    Route {
        path: paths::CLUSTER,
        operations: &READ_ORGANISER,
    },
    Route {
        path: paths::MEMBER,
        operations: &[op("PUT", Organiser), op("DELETE", Organiser)],
    },
    Route {
        path: paths::CHANGES,
        operations: &READ_ORGANISER,
    },
    Route {
        path: paths::CHANGES_LIVE,
        operations: &READ_ORGANISER,
    },
    Route {
        path: paths::ROOM_ENTRY,
        operations: &[
            op("GET", Customer),
            op("HEAD", Customer),
            op("PUT", Customer),
            op("DELETE", Customer),
        ],
    },
    Route {
        path: paths::ROOM_LIVE,
        operations: &READ_CUSTOMER,
    },
    Route {
        path: paths::SEATS,
        operations: &[
            op("GET", Public),
            op("HEAD", Public),
            op("PATCH", Organiser),
        ],
    },
    Route {
        path: paths::SEATS_LIVE,
        operations: &READ_PUBLIC,
    },
];

/// The index of `pattern` in [`ROUTES`] (a metrics row), if it is one.
pub fn index_of(pattern: &str) -> Option<usize> {
    ROUTES.iter().position(|r| r.path == pattern)
}

/// The index in [`ROUTES`] of the first route whose pattern matches `path`
/// (what the router picks), found without the router's regexes or an
/// allocation. Every pattern is literal segments and `{name}` segments,
/// which actix matches as `[^/]+`. `None` for a path with a `%`: actix
/// matches those after decoding some escapes, so they are left to it.
pub fn index_of_path(path: &str) -> Option<usize> {
    if path.contains('%') {
        return None;
    }
    ROUTES
        .iter()
        .position(|route| matches_pattern(route.path, path))
}

/// Who may call `method` at `path`, if a route serves it. `pattern` is
/// actix's own match of the path, asked for only when the segment matcher
/// cannot tell (a path with `%`).
pub fn access_at(
    method: &str,
    path: &str,
    pattern: impl FnOnce() -> Option<String>,
) -> Option<Access> {
    let route = match index_of_path(path) {
        Some(i) => &ROUTES[i],
        None => {
            let pattern = pattern()?;
            ROUTES.iter().find(|r| r.path == pattern)?
        }
    };
    route.access(method)
}

/// Whether `path` matches `pattern`, segment by segment.
fn matches_pattern(pattern: &str, path: &str) -> bool {
    let mut wanted = pattern.split('/');
    let mut given = path.split('/');
    let is_param = |w: &str| w.starts_with('{') && w.ends_with('}');
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if is_param(w) && !g.is_empty() => {}
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The segment matcher picks what actix's router picks: the first
    /// route, in table order, whose `ResourceDef` matches.
    #[test]
    fn a_path_finds_the_route_the_router_would() {
        let defs: Vec<actix_web::dev::ResourceDef> = ROUTES
            .iter()
            .map(|r| actix_web::dev::ResourceDef::new(r.path))
            .collect();
        let router = |path: &str| defs.iter().position(|d| d.is_match(path));
        let mut paths = vec![
            String::new(),
            "//".into(),
            "/api".into(),
            "/api/".into(),
            "/api/events/".into(),
            "/api/events//bookings/u1".into(),
            "/api/events/1/bookings/".into(),
            "/api/events/1/bookings/u1/".into(),
            "/api/events/1/bookings/u1/confirm/x".into(),
            "/API/events/1".into(),
            "/nope".into(),
        ];
        for route in ROUTES {
            for value in ["1", "u-1.x", "{eventId}", "a:b", "x y"] {
                let concrete: Vec<String> = route
                    .path
                    .split('/')
                    .map(|s| {
                        if s.starts_with('{') {
                            value.to_string()
                        } else {
                            s.to_string()
                        }
                    })
                    .collect();
                let concrete = concrete.join("/");
                paths.push(format!("{concrete}/"));
                paths.push(format!("{concrete}/more"));
                paths.push(concrete);
            }
        }
        for path in &paths {
            assert_eq!(index_of_path(path), router(path), "{path:?}");
        }
        assert_eq!(index_of_path("/api/%65vents/1"), None, "left to the router");
    }

    #[test]
    fn every_path_is_listed_once_and_every_get_has_its_head() {
        for (i, route) in ROUTES.iter().enumerate() {
            assert_eq!(index_of(route.path), Some(i), "{} twice", route.path);
            let get = route.access("GET");
            let head = route.access("HEAD");
            assert_eq!(get, head, "{}: HEAD follows GET", route.path);
        }
        assert_eq!(ROUTES[0].allow(), "GET, HEAD, PUT, PATCH, DELETE");
    }
}
