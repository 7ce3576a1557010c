//! The OpenAPI descriptions of the path, query and header parameters the
//! routes share, for the route documents of `openapi` and the resource
//! modules. (Fields are read by `utoipa` alone.)

#![allow(dead_code)]

/// The `Idempotency-Key` header of creates.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKeyParam {
    /// Makes a create safe to repeat: the same key within 24 hours answers
    /// the first create and creates nothing. At most once a request
    /// (sent twice: 400).
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        pattern = r"^[\x20-\x7E]+$"
    )]
    idempotency_key: Option<String>,
}

/// The `eventId` path segment.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EventIdParam {
    /// The event: an integer from 1 to 2^53 - 1, in plain decimal digits
    /// (no sign, no leading zero, no fraction).
    // Exactly 1 to 9007199254740991 (a test checks the bounds).
    #[param(
        rename = "eventId",
        pattern = r"^(?:[1-9][0-9]{0,14}|[1-8][0-9]{15}|900[0-6][0-9]{12}|90070[0-9]{11}|90071[0-8][0-9]{10}|900719[0-8][0-9]{9}|9007199[0-1][0-9]{8}|90071992[0-4][0-9]{7}|900719925[0-3][0-9]{6}|9007199254[0-6][0-9]{5}|90071992547[0-3][0-9]{4}|9007199254740[0-8][0-9]{2}|90071992547409[0-8][0-9]{1}|9007199254740990|9007199254740991)$"
    )]
    event_id: String,
}

/// The `userId` path segment.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserIdParam {
    /// 1 to 64 letters, digits and `._-@:`; not `.` or `..`.
    #[param(
        rename = "userId",
        pattern = r"^[A-Za-z0-9_@:-][A-Za-z0-9._@:-]{0,63}$|^\.[A-Za-z0-9._@:-]{2,63}$|^\.[A-Za-z0-9_@:-]$"
    )]
    user_id: String,
}

/// `after` and `limit` of the change feed.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesParams {
    /// The index the items follow: 0 (default) from the oldest kept, else
    /// the `next` of the previous page.
    #[param(minimum = 0, maximum = 9_007_199_254_740_991_u64)]
    after: Option<u64>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// `after` of the live change feed (it sends every change; no pages).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesLiveParams {
    /// The index the stream starts after: 0 (default) from the oldest
    /// kept; a reconnection's `Last-Event-ID` wins over it.
    #[param(minimum = 0, maximum = 9_007_199_254_740_991_u64)]
    after: Option<u64>,
}

/// `offset` and `limit` of a list.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 0-based index of the first item (default 0).
    #[param(minimum = 0, maximum = 9_007_199_254_740_991_u64)]
    offset: Option<u64>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}
