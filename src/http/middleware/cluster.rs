//! What a cluster adds to every request: changes only on the leader
//! (`NOT_LEADER` elsewhere, naming it), `X-Boxoffice-Index` on every reply,
//! and reads that wait for `X-Boxoffice-Min-Index`. A single node answers
//! the same headers from its journal position.

use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, Error, ResponseError};

use crate::http::{ApiError, AppState};

/// The index of the last change a reply reflects.
pub const INDEX_HEADER: &str = "x-boxoffice-index";
/// A read waits until this index is applied.
pub const MIN_INDEX_HEADER: &str = "x-boxoffice-min-index";
/// How long a read waits for `X-Boxoffice-Min-Index`.
pub const MIN_INDEX_WAIT: Duration = Duration::from_secs(2);

/// Whether `method` changes something (every route but reads).
fn is_change(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The middleware.
pub async fn route(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let refused = if is_change(req.method()) {
        state.cluster.as_ref().and_then(|node| {
            let api = req.path().starts_with("/api/");
            (api && node.log.leading().is_none()).then(|| ApiError::NotLeader(node.leader_url()))
        })
    } else {
        match req.headers().get(MIN_INDEX_HEADER) {
            None => None,
            Some(raw) => match raw.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) {
                None => Some(ApiError::field(
                    "X-Boxoffice-Min-Index",
                    "must be a whole number",
                )),
                Some(min) if !state.wait_for_index(min, MIN_INDEX_WAIT).await => {
                    Some(ApiError::Unavailable)
                }
                Some(_) => None,
            },
        }
    };
    if let Some(error) = refused {
        let mut response = req.into_response(error.error_response());
        set_index(response.headers_mut(), state.change_index());
        return Ok(response.map_into_right_body());
    }
    let mut response = next.call(req).await?;
    set_index(response.headers_mut(), state.change_index());
    Ok(response.map_into_left_body())
}

fn set_index(headers: &mut actix_web::http::header::HeaderMap, index: u64) {
    headers.insert(
        HeaderName::from_static(INDEX_HEADER),
        HeaderValue::from(index),
    );
}
