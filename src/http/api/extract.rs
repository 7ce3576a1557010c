//! Turning raw request parts into valid values, or a JSON error.

use actix_web::dev::Payload;
use actix_web::{mime, web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::{LocalBoxFuture, Map};
use futures_util::{FutureExt, StreamExt};
use serde::de::DeserializeOwned;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

use crate::domain::{EventId, UserId};
use crate::http::api::error::{ApiError, FieldError};
use crate::http::AppState;

/// A JSON body that parsed and passed its `validator` rules.
///
/// Checks, in order: the content type (415), the size (413), the syntax
/// (`INVALID_JSON`), the field types and the field rules (`VALIDATION_FAILED`,
/// naming each bad field).
pub struct ValidJson<T>(pub T);

/// The future of an extractor over [`read_json`]: its one boxed future,
/// mapped (not boxed again).
type BodyFuture<T, Out> = Map<
    LocalBoxFuture<'static, Result<Option<T>, ApiError>>,
    fn(Result<Option<T>, ApiError>) -> Out,
>;

/// A body type some of whose bodies may be larger than
/// `limits.max_body_bytes`: a create with a seat map, up to
/// `limits.max_seating_body_bytes`.
pub trait LargeBody {
    /// Whether this body is one that may be large.
    fn may_be_large(&self) -> bool;
}

/// A create with a seat map may be up to `limits.max_seating_body_bytes`.
impl LargeBody for crate::http::api::dto::CreateEventRequest {
    fn may_be_large(&self) -> bool {
        self.seating.is_some()
    }
}

/// [`ValidJson`] for a [`LargeBody`]: read up to the larger limit, then
/// held to `limits.max_body_bytes` unless it is one that may be large.
pub struct LargeJson<T>(pub T);

impl<T: DeserializeOwned + Validate + LargeBody + 'static> FromRequest for LargeJson<T> {
    type Error = ApiError;
    type Future = BodyFuture<T, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let required: fn(Result<Option<T>, ApiError>) -> Result<Self, ApiError> = |body| {
            body?
                .map(LargeJson)
                .ok_or_else(|| ApiError::InvalidJson("the body is empty".into()))
        };
        read_json::<T>(req, payload, false, Some(T::may_be_large)).map(required)
    }
}

impl<T: DeserializeOwned + Validate + 'static> FromRequest for ValidJson<T> {
    type Error = ApiError;
    type Future = BodyFuture<T, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let required: fn(Result<Option<T>, ApiError>) -> Result<Self, ApiError> = |body| {
            body?
                .map(ValidJson)
                .ok_or_else(|| ApiError::InvalidJson("the body is empty".into()))
        };
        read_json::<T>(req, payload, false, None).map(required)
    }
}

/// A body that may be left out entirely (no bytes at all); when present it
/// is checked as [`ValidJson`] is.
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned + Validate + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = BodyFuture<T, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let optional: fn(Result<Option<T>, ApiError>) -> Result<Self, ApiError> =
            |body| body.map(OptionalJson);
        read_json::<T>(req, payload, true, None).map(optional)
    }
}

/// (what may be read, `limits.max_body_bytes`): the first is the larger
/// `limits.max_seating_body_bytes` for a body that may be large.
fn body_limits(state: Option<&web::Data<AppState>>, may_be_large: bool) -> (usize, usize) {
    let small = state.map_or(16_384, |s| s.service.limits().max_body_bytes);
    let large = state.map_or(small, |s| s.service.limits().max_seating_body_bytes);
    (
        if may_be_large {
            large.max(small)
        } else {
            small
        },
        small,
    )
}

/// Reads and checks a JSON body; `Ok(None)` only when `optional` and the
/// request carries no body bytes. With `may_be_large`, a body up to
/// `limits.max_seating_body_bytes` is read, and one over
/// `limits.max_body_bytes` is kept only if `may_be_large` says it may be.
fn read_json<T: DeserializeOwned + Validate + 'static>(
    req: &HttpRequest,
    payload: &mut Payload,
    optional: bool,
    may_be_large: Option<fn(&T) -> bool>,
) -> LocalBoxFuture<'static, Result<Option<T>, ApiError>> {
    let state = req.app_data::<web::Data<AppState>>();
    let (limit, small) = body_limits(state, may_be_large.is_some());
    let timeout = state.map_or(std::time::Duration::from_secs(5), |s| s.body_timeout);
    let is_json = matches!(
        req.mime_type(),
        Ok(Some(m)) if m.type_() == mime::APPLICATION && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON))
    );
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut payload = payload.take();
    Box::pin(async move {
        // Without a body an optional one needs no content type.
        let bodyless = optional && declared.unwrap_or(0) == 0;
        if !(is_json || bodyless) {
            return Err(ApiError::UnsupportedMediaType);
        }
        if declared.is_some_and(|n| n > limit) {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        let read = async {
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk
                    .map_err(|e| ApiError::InvalidJson(format!("could not read the body: {e}")))?;
                if body.len() + chunk.len() > limit {
                    return Err(ApiError::PayloadTooLarge(limit));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        // A client that sends the head and then trickles (or never sends)
        // the body would hold its connection for ever.
        let body = actix_web::rt::time::timeout(timeout, read)
            .await
            .map_err(|_| ApiError::RequestTimeout)??;
        if optional && body.is_empty() {
            return Ok(None);
        }
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        // An optional body may also be JSON `null`: "no body" either way.
        let parsed: Result<Option<T>, ApiError> = if optional {
            parse_json(&body)
        } else {
            parse_json(&body).map(Some)
        };
        // serde would read a struct from a well-formed array too; the
        // contract's bodies are objects.
        let array = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
        let value = match parsed {
            Err(e @ ApiError::InvalidJson(_)) => return Err(e),
            _ if array => return Err(ApiError::field("body", "must be a JSON object")),
            other => other?,
        };
        if let Some(value) = &value {
            if body.len() > small && !may_be_large.is_some_and(|large| large(value)) {
                return Err(ApiError::PayloadTooLarge(small));
            }
            value
                .validate()
                .map_err(|e| ApiError::Validation(field_errors(&e)))?;
        }
        Ok(value)
    })
}

/// Parses JSON, telling bad syntax (`INVALID_JSON`) from a well-formed body
/// whose fields have the wrong type (`VALIDATION_FAILED` with the field).
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." {
                    String::from("body")
                } else {
                    path
                };
                ApiError::field(&field, &strip_position(&inner.to_string()))
            }
            _ => ApiError::InvalidJson(inner.to_string()),
        }
    })?;
    de.end().map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    Ok(value)
}

/// serde_json appends "at line 1 column 20"; in a field error it is noise.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// `validator`'s errors as the contract's `details`, with field names as
/// clients spell them, sorted so answers are stable.
pub fn field_errors(errors: &ValidationErrors) -> Vec<FieldError> {
    let mut out = Vec::new();
    for (field, kind) in errors.errors() {
        if let ValidationErrorsKind::Field(list) = kind {
            for e in list {
                let message = e
                    .message
                    .as_ref()
                    .map_or_else(|| e.code.to_string(), |m| m.to_string());
                out.push(FieldError::new(camel_case(field), message));
            }
        }
    }
    out.sort_by(|a, b| a.field.cmp(&b.field));
    out
}

fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses a path segment as an event id: a positive integer up to 2^53 - 1
/// in its plain decimal form (no sign, no leading zero: `00001` is not 1,
/// as the OpenAPI document's pattern says).
pub fn event_id(raw: &str) -> Result<EventId, ApiError> {
    raw.parse::<u64>()
        .ok()
        .filter(|_| raw.bytes().all(|b| b.is_ascii_digit()) && !raw.starts_with('0'))
        .and_then(|n| EventId::try_from(n).ok())
        .ok_or_else(|| ApiError::field("eventId", "must be an integer from 1 to 9007199254740991"))
}

/// The `Idempotency-Key` header, if sent: 1 to 255 printable ASCII
/// characters, else 400. Sent twice it is 400 too: which one a client
/// meant cannot be known, and taking either could create twice.
pub fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all("idempotency-key");
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::field(
            "Idempotency-Key",
            "must be sent once; this request has it more than once",
        ));
    }
    match value.to_str() {
        Ok(key) if crate::domain::valid_key(key) => Ok(Some(key.to_string())),
        _ => Err(ApiError::field(
            "Idempotency-Key",
            "must be 1 to 255 printable ASCII characters",
        )),
    }
}

/// Parses a path segment as a user id.
pub fn user_id(raw: &str) -> Result<UserId, ApiError> {
    let refuse = |why: String| ApiError::field("userId", &why);
    if UserId::is_valid(raw) && !crate::http::api::dto::is_new_user_id(raw) {
        return Err(refuse(format!("{raw:?} is not a usable user id")));
    }
    UserId::try_from(raw).map_err(|e| refuse(e.to_string()))
}

/// `offset` and `limit` of a list request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQuery {
    /// 0-based index of the first item.
    pub offset: usize,
    /// Most items to return.
    pub limit: usize,
}

/// The page size when none is asked for.
pub const DEFAULT_PAGE_LIMIT: usize = 100;
/// The largest page a client may ask for.
pub const MAX_PAGE_LIMIT: usize = 1000;

impl FromRequest for PageQuery {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_page(req.query_string()))
    }
}

fn parse_page(query: &str) -> Result<PageQuery, ApiError> {
    let mut page = PageQuery {
        offset: 0,
        limit: DEFAULT_PAGE_LIMIT,
    };
    parse_query(query, |key, value| match key {
        "offset" => match value.parse::<usize>() {
            Ok(n) if n <= crate::domain::MAX_EVENT_ID as usize => {
                page.offset = n;
                Ok(())
            }
            _ => Err(FieldError::new("offset", "must be a non-negative integer")),
        },
        "limit" => parse_limit(value).map(|n| page.limit = n),
        _ => Ok(()),
    })?;
    Ok(page)
}

/// `after` and `limit` of a change feed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangesQuery {
    /// The index the items follow (0: from the start).
    pub after: u64,
    /// Most items to return.
    pub limit: usize,
}

impl FromRequest for ChangesQuery {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_changes(req.query_string()))
    }
}

fn parse_changes(query: &str) -> Result<ChangesQuery, ApiError> {
    let mut changes = ChangesQuery {
        after: 0,
        limit: DEFAULT_PAGE_LIMIT,
    };
    parse_query(query, |key, value| match key {
        "after" => match value.parse::<u64>() {
            // Indexes stay within what a JSON number holds exactly.
            Ok(n) if n <= crate::domain::MAX_EVENT_ID => {
                changes.after = n;
                Ok(())
            }
            _ => Err(FieldError::new(
                "after",
                "must be an integer from 0 to 9007199254740991",
            )),
        },
        "limit" => parse_limit(value).map(|n| changes.limit = n),
        _ => Ok(()),
    })?;
    Ok(changes)
}

fn parse_limit(value: &str) -> Result<usize, FieldError> {
    match value.parse::<usize>() {
        Ok(n) if (1..=MAX_PAGE_LIMIT).contains(&n) => Ok(n),
        _ => Err(FieldError::new(
            "limit",
            "must be an integer from 1 to 1000",
        )),
    }
}

/// Hands each `key=value` of a query string to `field`, gathering every
/// field's error into one 400. Unknown parameters are for `field` to
/// ignore, like unknown body fields.
fn parse_query(
    query: &str,
    mut field: impl FnMut(&str, &str) -> Result<(), FieldError>,
) -> Result<(), ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|_| ApiError::field("query", "is not a valid query string"))?;
    let errors: Vec<FieldError> = pairs
        .iter()
        .filter_map(|(key, value)| field(key, value).err())
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_queries_default_and_bound_their_values() {
        assert_eq!(
            parse_changes("").expect("defaults"),
            ChangesQuery {
                after: 0,
                limit: DEFAULT_PAGE_LIMIT
            }
        );
        assert_eq!(
            parse_changes("after=12&limit=1000&x=y").expect("valid"),
            ChangesQuery {
                after: 12,
                limit: 1000
            }
        );
        for bad in [
            "after=-1",
            "after=x",
            "limit=0",
            "limit=1001",
            "after=1&after=%zz",
        ] {
            assert!(parse_changes(bad).is_err(), "{bad:?} accepted");
        }
        match parse_changes("after=-1&limit=0") {
            Err(ApiError::Validation(errors)) => assert_eq!(errors.len(), 2),
            other => panic!("both fields named: {other:?}"),
        }
    }

    #[test]
    fn path_event_ids_must_be_plain_positive_integers() {
        assert_eq!(event_id("42").expect("valid").get(), 42);
        for bad in [
            "0",
            "-1",
            "+1",
            "1.5",
            "abc",
            "",
            " 1",
            "9007199254740992",
            "99999999999999999999999",
        ] {
            assert!(event_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn page_queries_default_and_bound_their_values() {
        assert_eq!(
            parse_page("").expect("ok"),
            PageQuery {
                offset: 0,
                limit: 100
            }
        );
        assert_eq!(
            parse_page("offset=5&limit=1000&x=1").expect("ok"),
            PageQuery {
                offset: 5,
                limit: 1000
            }
        );
        for bad in ["limit=0", "limit=1001", "offset=-1", "limit=abc"] {
            assert!(parse_page(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn snake_case_fields_are_reported_in_camel_case() {
        assert_eq!(camel_case("total_tickets"), "totalTickets");
        assert_eq!(camel_case("name"), "name");
    }
}
