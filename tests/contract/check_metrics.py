"""Parses /metrics with prometheus_client's OpenMetrics parser and checks
that counters move as requests are made. Usage: check_metrics.py BASE_URL"""

import json
import sys
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def fetch(base, path, method="GET", body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as res:
        return res.status, res.headers.get("Content-Type", ""), res.read().decode()


def samples(base):
    status, kind, text = fetch(base, "/metrics")
    assert status == 200, status
    assert kind.startswith("application/openmetrics-text"), kind
    found = {}
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("boxoffice_"), family.name
        for s in family.samples:
            for key, value in s.labels.items():
                assert "/api/events/1/" not in value, f"raw path in a label: {s}"
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def main():
    base = sys.argv[1]
    before = samples(base)
    for name in [
        "boxoffice_http_requests_total",
        "boxoffice_bookings_total",
        "boxoffice_cancellations_total",
        "boxoffice_promotions_total",
        "boxoffice_holds_expired_total",
        "boxoffice_events",
        "boxoffice_journal_fsync_seconds_count",
        "boxoffice_snapshot_seconds",
        "boxoffice_snapshot_bytes",
        "boxoffice_mailbox_rejections_total",
        "boxoffice_rate_limited_total",
        "boxoffice_live_streams",
        "boxoffice_resident_memory_bytes",
        "boxoffice_webhook_delivered_index",
        "boxoffice_webhook_failures_total",
        "boxoffice_room_waiting",
        "boxoffice_room_admitted_total",
        "boxoffice_room_expired_total",
        "boxoffice_seats_booked_total",
        "boxoffice_best_available_seconds_count",
        "boxoffice_cluster_is_leader",
        "boxoffice_cluster_term",
        "boxoffice_cluster_commit_index",
        "boxoffice_cluster_applied_index",
        "boxoffice_cluster_leader_changes_total",
        "boxoffice_cluster_snapshot_index",
        "boxoffice_cluster_purged_index",
    ]:
        assert any(k[0] == name for k in before), f"{name} missing"
    status, _, body = fetch(base, "/api/events", "POST", {"totalTickets": 1})
    assert status == 201, body
    event = json.loads(body)["event"]["id"]
    for user in ["metrics-a", "metrics-b"]:
        fetch(base, f"/api/events/{event}/bookings/{user}", "PUT")
    seating = {"seating": {"sections": [{"name": "S", "rowCount": 1, "seatsPerRow": 4}]}}
    status, _, body = fetch(base, "/api/events", "POST", seating)
    assert status == 201, body
    seated = json.loads(body)["event"]["id"]
    status, _, body = fetch(base, f"/api/events/{seated}/bookings/metrics-c", "PUT", {"quantity": 2})
    assert status == 200, body
    after = samples(base)

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    route = "/api/events/{eventId}/bookings/{userId}"
    # Two on the unseated event, one on the seated.
    assert delta("boxoffice_http_requests_total", route=route, method="PUT", status="200") == 3
    # One on the unseated event (the other waits), one on the seated.
    assert delta("boxoffice_bookings_total", outcome="confirmed") == 2
    assert delta("boxoffice_bookings_total", outcome="waiting") == 1
    assert delta("boxoffice_events") == 2
    assert delta("boxoffice_seats_booked_total") == 2
    assert delta("boxoffice_best_available_seconds_count") == 1
    print(f"metrics: {len(after)} samples parsed; counters moved as expected")


if __name__ == "__main__":
    main()
