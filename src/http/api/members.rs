//! `PUT` and `DELETE /api/cluster/members/{nodeId}`: adding a node to the
//! cluster (a learner until it has caught up, then a voter) and removing
//! one. Only the leader gets here (the cluster middleware answers
//! `NOT_LEADER` elsewhere); the work is `ClusterNode`'s.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use validator::Validate;

use crate::cluster::node::MembershipRefused;
use crate::cluster::settings::check_addresses;
use crate::http::api::auth::Organiser;
use crate::http::api::error::{ApiError, JsonLine};
use crate::http::api::extract::ValidJson;
use crate::http::api::handlers::MemberJson;
use crate::http::AppState;
use crate::persistence::raft::Member;

type State = web::Data<AppState>;

/// `PUT /api/cluster/members/{nodeId}`: where the new node listens.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[schema(example = json!({"peer": "10.0.0.4:7101", "http": "http://10.0.0.4:8101"}))]
pub struct MemberRequest {
    /// host:port of its peer listener (`cluster.nodes[].peer` on it).
    #[validate(length(
        min = 3,
        max = 255,
        message = "must be the node's peer listener as host:port, 3 to 255 characters"
    ))]
    #[schema(
        min_length = 3,
        max_length = 255,
        pattern = r"^[^\s\u0000-\u001F\u007F-\u009F]+:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$"
    )]
    pub peer: String,
    /// The URL clients reach it at.
    #[validate(length(
        min = 8,
        max = 255,
        message = "must be the URL clients reach the node at (http:// or https://), 8 to 255 characters"
    ))]
    #[schema(
        min_length = 8,
        max_length = 255,
        pattern = r"^https?://[^\s\u0000-\u001F\u007F-\u009F]+$"
    )]
    pub http: String,
}

/// The answer of `PUT /api/cluster/members/{nodeId}`.
#[derive(serde::Serialize, ToSchema)]
pub struct MemberAdded {
    /// The member; `voter` is false until it has caught up.
    member: MemberJson,
}

/// The answer of `DELETE /api/cluster/members/{nodeId}`.
#[derive(serde::Serialize, ToSchema)]
pub struct MemberRemoved {
    /// The node removed.
    removed: u64,
    /// The members now.
    members: Vec<MemberJson>,
}

fn node_id(raw: &str) -> Result<u64, ApiError> {
    raw.parse::<u64>()
        .ok()
        .filter(|id| *id >= 1 && raw.bytes().all(|b| b.is_ascii_digit()) && !raw.starts_with('0'))
        .ok_or_else(|| ApiError::field("nodeId", "must be an integer from 1"))
}

fn not_a_cluster() -> ApiError {
    ApiError::Conflict {
        code: "NOT_A_CLUSTER",
        message: "This service runs as a single node (no [cluster] section): it has no members"
            .into(),
    }
}

impl From<MembershipRefused> for ApiError {
    fn from(refused: MembershipRefused) -> Self {
        match refused {
            MembershipRefused::NotLeader(url) => ApiError::NotLeader(url),
            MembershipRefused::Conflict(why) => ApiError::Conflict {
                code: "MEMBERSHIP_CONFLICT",
                message: why,
            },
            MembershipRefused::NotMember => ApiError::NotFound,
            MembershipRefused::Unavailable(why) => {
                log::warn!("cluster: a membership change failed: {why}");
                ApiError::Unavailable
            }
        }
    }
}

/// Adds a node started with `cluster.join = true`: 202 once it is a
/// learner; it becomes a voter when it has caught up.
pub async fn put_member(
    _: Organiser,
    state: State,
    path: web::Path<String>,
    body: ValidJson<MemberRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = node_id(&path)?;
    let body = body.0;
    check_addresses(&body.peer, &body.http).map_err(|why| {
        let field = if why.starts_with("peer") {
            "peer"
        } else {
            "http"
        };
        ApiError::field(field, why)
    })?;
    let node = state.cluster.as_ref().ok_or_else(not_a_cluster)?;
    let member = Member {
        peer: body.peer,
        http: body.http,
    };
    let voter = node.add_member(id, member.clone()).await?;
    Ok(HttpResponse::Accepted().json_line(MemberAdded {
        member: MemberJson::new(id, member, voter),
    }))
}

/// Removes a member; 200 once the new membership is committed.
pub async fn delete_member(
    _: Organiser,
    state: State,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = node_id(&path)?;
    let node = state.cluster.as_ref().ok_or_else(not_a_cluster)?;
    node.remove_member(id).await?;
    let members = node
        .members()
        .into_iter()
        .map(|(id, member, voter)| MemberJson::new(id, member, voter))
        .collect();
    Ok(HttpResponse::Ok().json_line(MemberRemoved {
        removed: id,
        members,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_positive_integers() {
        assert_eq!(node_id("4").ok(), Some(4));
        for bad in ["0", "-1", "+4", "4x", "", "99999999999999999999999"] {
            assert!(node_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refusals_become_the_contract_errors() {
        let not_leader: ApiError = MembershipRefused::NotLeader(Some("http://a".into())).into();
        assert_eq!(not_leader.code(), "NOT_LEADER");
        let conflict: ApiError = MembershipRefused::Conflict("busy".into()).into();
        assert_eq!(conflict.code(), "MEMBERSHIP_CONFLICT");
        let missing: ApiError = MembershipRefused::NotMember.into();
        assert_eq!(missing.code(), "NOT_FOUND");
        let down: ApiError = MembershipRefused::Unavailable("stopped".into()).into();
        assert_eq!(down.code(), "UNAVAILABLE");
    }
}
