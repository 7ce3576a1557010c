//! A change sent to a follower is forwarded to the leader (contract v4,
//! Corrections), and the leader counts it under the client's address for
//! its rate limit, not under the follower's. On c0394eb the follower
//! answered 503 `NOT_LEADER`.

use reqwest::StatusCode;
use serde_json::json;

use super::cluster::{create_event, Cluster};

/// A client behind the nodes' trusted proxy (loopback here).
const CLIENT: &str = "203.0.113.7";
/// Another client.
const OTHER: &str = "198.51.100.1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_change_counts_under_the_client_s_address_on_the_leader() {
    let cluster = Cluster::start_with_env(
        3,
        "\n[server]\ntrusted_proxies = [\"127.0.0.1\"]\n",
        &[
            ("BOXOFFICE__RATE_LIMIT__ENABLED", "true"),
            ("BOXOFFICE__RATE_LIMIT__REQUESTS", "3"),
            ("BOXOFFICE__RATE_LIMIT__PERIOD_SECS", "3600"),
        ],
    );
    let leader = cluster.leader().await;
    let event = create_event(&cluster, "forwarded", 10).await;
    let follower = (leader + 1) % 3;
    cluster.knows_leader(follower, leader).await;
    let http = reqwest::Client::new();
    let book = |node: usize, user: &str, client: &str| {
        http.put(format!(
            "{}/api/events/{event}/bookings/{user}",
            cluster.nodes[node].base()
        ))
        .header("x-forwarded-for", client)
        .json(&json!({}))
        .send()
    };
    // The client's whole quota, spent through the follower.
    for user in ["a", "b", "c"] {
        let res = book(follower, user, CLIENT).await.expect("sent");
        let status = res.status();
        let body = res.text().await.expect("body");
        assert_eq!(
            status,
            StatusCode::OK,
            "{user} through the follower: {body}"
        );
    }
    // The leader counted them under the client: its next change is 429
    // there too. (Counted under the follower's address, it would be 200.)
    let res = book(leader, "d", CLIENT).await.expect("sent");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another client is not affected; it spends its quota on the leader.
    for user in ["e", "f", "g"] {
        let res = book(leader, user, OTHER).await.expect("sent");
        assert_eq!(res.status(), StatusCode::OK, "{user}");
    }
    // Through the follower (where OTHER has its whole quota), the leader's
    // refusal is passed on as the leader gave it.
    let res = book(follower, "h", OTHER).await.expect("sent");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    let body: serde_json::Value = res.json().await.expect("JSON");
    assert_eq!(body["code"], "RATE_LIMITED", "{body}");
}
