//! The range checks serde cannot express, in the order the keys are
//! checked (the first key out of range is the one start-up names).

use std::ops::RangeInclusive;

use super::{ConfigError, Settings, MAX_RATE_PERIOD_SECS, MAX_TICKETS_PER_USER};

/// The error naming `key`, `why` it is wrong.
fn invalid(key: &'static str, why: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        why: why.to_string(),
    }
}

/// `key`'s `value` is in `range`, or the error naming it with `why`.
fn within<T: TryInto<u64>>(
    key: &'static str,
    value: T,
    range: RangeInclusive<u64>,
    why: &str,
) -> Result<(), ConfigError> {
    let value = value.try_into().unwrap_or(u64::MAX);
    if range.contains(&value) {
        Ok(())
    } else {
        Err(invalid(key, why))
    }
}

/// `Err` naming `key` with `why` when `bad`.
fn refuse(bad: bool, key: &'static str, why: &str) -> Result<(), ConfigError> {
    if bad {
        Err(invalid(key, why))
    } else {
        Ok(())
    }
}

impl Settings {
    /// Range checks serde cannot express.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.validate_server()?;
        self.validate_limits_and_webhooks()?;
        self.validate_storage()?;
        self.auth.validate()?;
        self.validate_live()?;
        if let Err((key, why)) = self.cluster.validate() {
            return Err(invalid(key, why.as_str()));
        }
        refuse(
            self.log.level.parse::<log::LevelFilter>().is_err(),
            "log.level",
            "must be one of off, error, warn, info, debug, trace",
        )
    }

    fn validate_server(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        refuse(s.host.trim().is_empty(), "server.host", "must not be empty")?;
        within(
            "server.workers",
            s.workers,
            0..=1024,
            "must be 0 (one per core) to 1024",
        )?;
        // actix-http times the head against a clock it refreshes every 500 ms,
        // so a shorter limit could fire at once.
        within(
            "server.client_request_timeout_ms",
            s.client_request_timeout_ms,
            1_000..=600_000,
            "must be 1000 to 600000",
        )?;
        within(
            "server.keep_alive_secs",
            s.keep_alive_secs,
            0..=3_600,
            "must be 0 (off) to 3600",
        )?;
        within(
            "server.max_connections",
            s.max_connections,
            1..=1_000_000,
            "must be 1 to 1000000",
        )?;
        within(
            "server.max_connections_per_ip",
            s.max_connections_per_ip,
            0..=1_000_000,
            "must be 0 (no cap) to 1000000",
        )?;
        within(
            "server.send_timeout_ms",
            s.send_timeout_ms,
            1_000..=3_600_000,
            "must be 1000 to 3600000",
        )?;
        within(
            "server.max_unsent_bytes",
            s.max_unsent_bytes,
            4_096..=1 << 30,
            "must be 4096 to 1073741824",
        )?;
        within(
            "server.shutdown_timeout_secs",
            s.shutdown_timeout_secs,
            0..=3_600,
            "must be 0 to 3600",
        )?;
        if let Err(bad) = s.trusted_networks() {
            return Err(invalid(
                "server.trusted_proxies",
                &format!("{bad:?} is not an IP address or CIDR (e.g. 10.0.0.0/8)"),
            ));
        }
        Ok(())
    }

    fn validate_limits_and_webhooks(&self) -> Result<(), ConfigError> {
        let (limits, hooks) = (&self.limits, &self.webhooks);
        within(
            "limits.max_tickets_per_event",
            limits.max_tickets_per_event,
            1..=crate::domain::MAX_EVENT_ID,
            "must be 1 to 2^53 - 1",
        )?;
        within(
            "limits.max_body_bytes",
            limits.max_body_bytes,
            256..=64 * 1024 * 1024,
            "must be 256 to 67108864",
        )?;
        within(
            "limits.max_tickets_per_user",
            limits.max_tickets_per_user,
            1..=u64::from(MAX_TICKETS_PER_USER),
            "must be 1 to 1000000",
        )?;
        within(
            "limits.max_events",
            limits.max_events,
            1..=10_000_000,
            "must be 1 to 10000000",
        )?;
        within(
            "webhooks.batch_max",
            hooks.batch_max,
            1..=1_000,
            "must be 1 to 1000",
        )?;
        within(
            "webhooks.timeout_ms",
            hooks.timeout_ms,
            100..=600_000,
            "must be 100 to 600000",
        )?;
        let url = &hooks.url;
        refuse(
            !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")),
            "webhooks.url",
            "must be empty (off) or an http:// or https:// URL",
        )?;
        refuse(
            !url.is_empty() && hooks.secret.is_empty(),
            "webhooks.secret",
            "must be set when webhooks.url is",
        )?;
        // A record handle is a u32, and u32::MAX is reserved.
        within(
            "limits.max_bookings_per_event",
            limits.max_bookings_per_event,
            1..=u64::from(u32::MAX - 1),
            "must be 1 to 4294967294",
        )?;
        within(
            "limits.max_create_keys",
            limits.max_create_keys,
            1..=10_000_000,
            "must be 1 to 10000000",
        )?;
        within(
            "limits.max_seats_per_event",
            limits.max_seats_per_event,
            1..=10_000_000,
            "must be 1 to 10000000",
        )?;
        within(
            "limits.max_seating_body_bytes",
            limits.max_seating_body_bytes,
            256..=256 * 1024 * 1024,
            "must be 256 to 268435456",
        )
    }

    fn validate_storage(&self) -> Result<(), ConfigError> {
        let (rate, snapshot, journal) = (&self.rate_limit, &self.snapshot, &self.journal);
        refuse(
            rate.requests == 0,
            "rate_limit.requests",
            "must be at least 1",
        )?;
        // Past a year the quota's arithmetic overflows (a panic, not a limit).
        within(
            "rate_limit.period_secs",
            rate.period_secs,
            1..=MAX_RATE_PERIOD_SECS,
            "must be 1 to 31536000 (a year)",
        )?;
        refuse(
            snapshot.dir.as_os_str().is_empty(),
            "snapshot.dir",
            "must not be empty",
        )?;
        within(
            "snapshot.interval_secs",
            snapshot.interval_secs,
            1..=86_400,
            "must be 1 to 86400",
        )?;
        within(
            "snapshot.keep",
            snapshot.keep,
            1..=1000,
            "must be 1 to 1000",
        )?;
        within(
            "snapshot.journal_percent",
            snapshot.journal_percent,
            0..=10_000,
            "must be 0 to 10000",
        )?;
        within(
            "journal.fsync_interval_ms",
            journal.fsync_interval_ms,
            1..=60_000,
            "must be 1 to 60000",
        )?;
        within(
            "journal.segment_bytes",
            journal.segment_bytes,
            4096..=1 << 34,
            "must be 4096 to 17179869184",
        )
    }

    fn validate_live(&self) -> Result<(), ConfigError> {
        let live = &self.live;
        within(
            "live.max_streams",
            live.max_streams,
            1..=1_000_000,
            "must be 1 to 1000000",
        )?;
        within(
            "live.max_streams_per_ip",
            live.max_streams_per_ip,
            0..=1_000_000,
            "must be 0 to 1000000",
        )?;
        within(
            "live.max_messages_per_sec",
            live.max_messages_per_sec,
            1..=10_000_000,
            "must be 1 to 10000000",
        )?;
        within(
            "live.min_interval_ms",
            live.min_interval_ms,
            1..=60_000,
            "must be 1 to 60000",
        )?;
        within(
            "live.keep_alive_secs",
            live.keep_alive_secs,
            1..=3_600,
            "must be 1 to 3600",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key, and how to put its value out of range.
    type Case = (&'static str, Box<dyn Fn(&mut Settings)>);

    /// One value out of range in each section names its key; the defaults
    /// pass.
    #[test]
    fn each_value_out_of_range_names_its_key() {
        assert!(Settings::default().validate().is_ok());
        let cases: Vec<Case> = vec![
            ("server.host", Box::new(|s| s.server.host = " ".into())),
            ("server.workers", Box::new(|s| s.server.workers = 1025)),
            (
                "server.client_request_timeout_ms",
                Box::new(|s| s.server.client_request_timeout_ms = 999),
            ),
            (
                "server.max_unsent_bytes",
                Box::new(|s| s.server.max_unsent_bytes = (1 << 30) + 1),
            ),
            (
                "server.trusted_proxies",
                Box::new(|s| s.server.trusted_proxies = vec!["nope".into()]),
            ),
            (
                "limits.max_tickets_per_user",
                Box::new(|s| s.limits.max_tickets_per_user = 0),
            ),
            (
                "webhooks.url",
                Box::new(|s| s.webhooks.url = "ftp://x".into()),
            ),
            (
                "webhooks.secret",
                Box::new(|s| s.webhooks.url = "https://x".into()),
            ),
            (
                "limits.max_bookings_per_event",
                Box::new(|s| s.limits.max_bookings_per_event = u64::from(u32::MAX)),
            ),
            (
                "rate_limit.requests",
                Box::new(|s| s.rate_limit.requests = 0),
            ),
            (
                "rate_limit.period_secs",
                Box::new(|s| s.rate_limit.period_secs = MAX_RATE_PERIOD_SECS + 1),
            ),
            ("snapshot.keep", Box::new(|s| s.snapshot.keep = 0)),
            (
                "journal.segment_bytes",
                Box::new(|s| s.journal.segment_bytes = (1 << 34) + 1),
            ),
            (
                "live.keep_alive_secs",
                Box::new(|s| s.live.keep_alive_secs = 0),
            ),
            ("log.level", Box::new(|s| s.log.level = "loud".into())),
        ];
        for (key, spoil) in cases {
            let mut settings = Settings::default();
            spoil(&mut settings);
            match settings.validate() {
                Err(ConfigError::Invalid { key: named, .. }) => assert_eq!(named, key),
                other => panic!("{key}: {other:?}"),
            }
        }
    }
}
