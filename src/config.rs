//! Typed settings: built-in defaults, then `config.toml` (or `--config PATH`),
//! then `BOXOFFICE__SECTION__KEY` environment variables, in that order.
//!
//! Every key is known: an unknown one or an out-of-range value stops start-up
//! with a message that names it, rather than running on a guess.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

mod validate;

pub use crate::cluster::settings::{ClusterSettings, NodeAddress};
pub use crate::persistence::journal::{FsyncMode, JournalSettings};

/// What `boxoffice --help` prints: the options, every configuration key
/// (`tests/config_keys.rs` holds it to [`Settings`]) and the exit codes.
pub const HELP: &str = "\
boxoffice: a ticket booking service (HTTP API in docs/API.md, keys in docs/configuration.md)

usage: boxoffice [--config PATH]

options:
  --config PATH   settings file (default: config.toml in the working
                  directory; built-in defaults when it does not exist)
  -h, --help      this text
  -V, --version   the version

configuration keys (file section.key; environment BOXOFFICE__SECTION__KEY,
e.g. BOXOFFICE__SERVER__PORT=9000, which wins over the file):
  server.host, server.port, server.workers,
  server.client_request_timeout_ms, server.keep_alive_secs,
  server.max_connections, server.max_connections_per_ip,
  server.send_timeout_ms, server.max_unsent_bytes,
  server.shutdown_timeout_secs,
  server.trusted_proxies
  limits.max_tickets_per_event, limits.max_body_bytes,
  limits.max_tickets_per_user, limits.max_events,
  limits.max_bookings_per_event, limits.max_create_keys,
  limits.max_seats_per_event, limits.max_seating_body_bytes
  rate_limit.enabled, rate_limit.requests, rate_limit.period_secs
  snapshot.dir (the data directory: snapshots and journal),
  snapshot.interval_secs, snapshot.keep, snapshot.journal_percent
  journal.enabled, journal.fsync, journal.fsync_interval_ms,
  journal.segment_bytes
  log.level (RUST_LOG wins), log.access_log
  live.max_streams, live.max_streams_per_ip, live.max_messages_per_sec,
  live.min_interval_ms, live.keep_alive_secs
  auth.admin_token, auth.users (trusted or jwt), auth.jwt_secret,
  auth.jwt_public_key_file, auth.jwt_issuer, auth.jwt_audience,
  auth.jwt_leeway_secs (secrets: prefer BOXOFFICE__AUTH__* variables)
  changes.retain_bytes
  webhooks.url, webhooks.secret, webhooks.batch_max, webhooks.timeout_ms
  cluster.node_id (0: no cluster), cluster.nodes, cluster.secret,
  cluster.join, cluster.heartbeat_ms, cluster.election_timeout_ms,
  cluster.snapshot_entries, cluster.max_clock_offset_ms

exit codes: 0 clean stop; 1 could not start (address in use, data directory
locked) or stop cleanly; 2 bad command line or configuration; 3 stored data
could not be read; 4 the node's state diverged (see docs/operations.md).";

/// The file read when no `--config` is given.
pub const DEFAULT_CONFIG_FILE: &str = "config.toml";
/// The environment prefix; `__` separates section and key.
pub const ENV_PREFIX: &str = "BOXOFFICE__";

/// Everything the service can be told at start-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where to listen and with how many workers.
    pub server: ServerSettings,
    /// Bounds on what clients may ask for.
    pub limits: LimitSettings,
    /// The per-IP request quota.
    pub rate_limit: RateLimitSettings,
    /// Where and how often state is written to disk.
    pub snapshot: SnapshotSettings,
    /// The write-ahead journal.
    pub journal: JournalSettings,
    /// How much is logged.
    pub log: LogSettings,
    /// Who may call which routes.
    pub auth: AuthSettings,
    /// Server-Sent Event streams.
    pub live: LiveSettings,
    /// The change feed.
    pub changes: ChangesSettings,
    /// Deliveries of the change feed to a receiver.
    pub webhooks: WebhookSettings,
    /// Several nodes holding the same state (off by default).
    pub cluster: ClusterSettings,
}

/// `[changes]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangesSettings {
    /// Journal bytes kept for the change feed, newest first, even when
    /// snapshots cover them (the feed serves what the journal keeps).
    pub retain_bytes: u64,
}

/// `[webhooks]`: the change feed POSTed to one receiver. `Debug` leaves
/// the secret out.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Where deliveries are POSTed (`http://` or `https://`); empty: off.
    pub url: String,
    /// The HMAC-SHA256 key of `X-Boxoffice-Signature`.
    pub secret: String,
    /// Most items one delivery carries.
    pub batch_max: usize,
    /// How long a delivery waits for its reply, in milliseconds.
    pub timeout_ms: u64,
}

/// `url` as a log line may show it: user information (`user:password@`)
/// and the query string (a token, often) replaced by `***`. Works on the
/// text alone, so a URL no parser accepts is masked too.
pub fn masked_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = match authority.rfind('@') {
        Some(at) => format!("***@{}", &authority[at + 1..]),
        None => authority.to_string(),
    };
    let tail = match tail.find('?') {
        Some(at) => {
            let fragment = tail[at..].find('#').map_or("", |f| &tail[at + f..]);
            format!("{}?***{fragment}", &tail[..at])
        }
        None => tail.to_string(),
    };
    format!("{scheme}{host}{tail}")
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = if self.secret.is_empty() {
            "(empty)"
        } else {
            "(set)"
        };
        f.debug_struct("WebhookSettings")
            .field("url", &masked_url(&self.url))
            .field("secret", &set)
            .field("batch_max", &self.batch_max)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// `[live]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveSettings {
    /// Streams open at once; past it a new one is 503.
    pub max_streams: usize,
    /// Streams one client address (as the rate limit sees it) may hold;
    /// past it a new one is 429. 0: no cap.
    pub max_streams_per_ip: usize,
    /// Messages the streams of one event send a second, all together: each
    /// stream's interval grows with the event's audience past
    /// `min_interval_ms`.
    pub max_messages_per_sec: u64,
    /// Least time between two messages of one stream, in milliseconds;
    /// changes in between are coalesced into the next message.
    pub min_interval_ms: u64,
    /// A `: keep-alive` comment after this long without a message, in seconds.
    pub keep_alive_secs: u64,
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to bind.
    pub host: String,
    /// Port to bind; 0 picks a free one (tests use this).
    pub port: u16,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// A request's head and its whole body must arrive within this, in
    /// milliseconds; a slower client gets 408 and its connection is closed.
    pub client_request_timeout_ms: u64,
    /// How long an idle keep-alive connection stays open, in seconds.
    pub keep_alive_secs: u64,
    /// Most connections each worker holds at once; past it new ones wait
    /// in the OS backlog.
    pub max_connections: usize,
    /// Most connections one client address holds at once (trusted proxies
    /// are not capped); past it a connection gets 429 and is closed. 0: no cap.
    pub max_connections_per_ip: usize,
    /// Written data a client leaves unread (or unacknowledged) this long,
    /// in milliseconds, and the kernel drops the connection
    /// (`TCP_USER_TIMEOUT`, Linux).
    pub send_timeout_ms: u64,
    /// A connection's next request waits while more reply bytes than this
    /// are not yet taken by its client (pipelining without reading).
    pub max_unsent_bytes: usize,
    /// How long in-flight requests get to finish after a stop signal, in
    /// seconds.
    pub shutdown_timeout_secs: u64,
    /// Reverse proxies (addresses or CIDRs) whose `X-Forwarded-For` is
    /// believed; empty: the TCP peer is the client.
    pub trusted_proxies: Vec<String>,
}

/// The longest `rate_limit.period_secs` accepted: a year.
pub const MAX_RATE_PERIOD_SECS: u64 = 31_536_000;

/// The largest `limits.max_tickets_per_user` accepted.
pub const MAX_TICKETS_PER_USER: u32 = 1_000_000;

/// `[limits]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    /// Largest `totalTickets` an event may be created with.
    pub max_tickets_per_event: u64,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Largest `maxPerUser` an event may be given; events created without
    /// one get `min(10, this)`.
    pub max_tickets_per_user: u32,
    /// Most events the service holds; creating one more is 409.
    pub max_events: u64,
    /// Most users who may book one event (every user who ever booked it
    /// keeps a record, so this bounds the event's memory); 409 past it.
    pub max_bookings_per_event: u64,
    /// Most idempotency keys of creates remembered (each for a day); the
    /// oldest are forgotten first past it.
    pub max_create_keys: usize,
    /// Most seats a seated event's map may have.
    pub max_seats_per_event: u64,
    /// Largest create body that carries a seat map, in bytes (other bodies
    /// keep `max_body_bytes`).
    pub max_seating_body_bytes: usize,
}

/// `[rate_limit]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Whether the quota is enforced at all (off for load tests).
    pub enabled: bool,
    /// Requests each client IP may make per period.
    pub requests: u32,
    /// The period, in seconds.
    pub period_secs: u64,
}

/// `[snapshot]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSettings {
    /// Directory the snapshot files live in.
    pub dir: PathBuf,
    /// Seconds between snapshot checks; one is written only when something
    /// changed (and, with the journal on, `journal_percent` allows).
    pub interval_secs: u64,
    /// How many snapshot files to keep.
    pub keep: usize,
    /// With the journal on, a snapshot is written once the journal written
    /// since the last one reaches this percentage of that snapshot's size,
    /// so snapshot bytes follow the changes, not the state's size. 0 writes
    /// one every interval in which anything changed.
    pub journal_percent: u32,
}

/// `[auth]`: the organiser's token and how customers prove who they are.
/// `Debug` leaves the secrets out, so settings can be logged.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Bearer token of organiser routes; empty leaves them open.
    pub admin_token: String,
    /// Whether a request's `userId` is believed or must be a JWT's `sub`.
    pub users: UserAuth,
    /// HS256 key of customer JWTs.
    pub jwt_secret: String,
    /// PEM public key (RSA or EC P-256) of customer JWTs, instead of the secret.
    pub jwt_public_key_file: PathBuf,
    /// Required `iss` when not empty.
    pub jwt_issuer: String,
    /// Required `aud` when not empty.
    pub jwt_audience: String,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub jwt_leeway_secs: u64,
}

/// `auth.users`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserAuth {
    /// The `userId` of a request is believed: a trusted front end calls.
    Trusted,
    /// Customer routes need a JWT whose `sub` is the `userId`.
    Jwt,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |s: &str| if s.is_empty() { "(empty)" } else { "(set)" };
        f.debug_struct("AuthSettings")
            .field("admin_token", &set(&self.admin_token))
            .field("users", &self.users)
            .field("jwt_secret", &set(&self.jwt_secret))
            .field("jwt_public_key_file", &self.jwt_public_key_file)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("jwt_leeway_secs", &self.jwt_leeway_secs)
            .finish()
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `error`, `warn`, `info`, `debug`, `trace` or `off`; `RUST_LOG` wins when set.
    pub level: String,
    /// Whether every request is logged.
    pub access_log: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            server: ServerSettings {
                host: "127.0.0.1".into(),
                port: 8080,
                workers: 0,
                client_request_timeout_ms: 5_000,
                keep_alive_secs: 5,
                max_connections: 25_000,
                max_connections_per_ip: 1_000,
                send_timeout_ms: 30_000,
                max_unsent_bytes: 256 * 1024,
                shutdown_timeout_secs: 10,
                trusted_proxies: Vec::new(),
            },
            limits: LimitSettings {
                max_tickets_per_event: 10_000_000,
                max_body_bytes: 16_384,
                max_tickets_per_user: 10,
                max_events: 100_000,
                max_bookings_per_event: 10_000_000,
                max_create_keys: 100_000,
                max_seats_per_event: 200_000,
                max_seating_body_bytes: 4 * 1024 * 1024,
            },
            rate_limit: RateLimitSettings {
                enabled: true,
                requests: 100,
                period_secs: 900,
            },
            snapshot: SnapshotSettings {
                dir: PathBuf::from("snapshots"),
                interval_secs: 5,
                keep: 3,
                journal_percent: 100,
            },
            journal: JournalSettings {
                enabled: true,
                fsync: FsyncMode::Always,
                fsync_interval_ms: 10,
                segment_bytes: 64 * 1024 * 1024,
            },
            log: LogSettings {
                level: "info".into(),
                access_log: true,
            },
            live: LiveSettings {
                max_streams: 10_000,
                max_streams_per_ip: 100,
                max_messages_per_sec: 10_000,
                min_interval_ms: 100,
                keep_alive_secs: 15,
            },
            auth: AuthSettings {
                admin_token: String::new(),
                users: UserAuth::Trusted,
                jwt_secret: String::new(),
                jwt_public_key_file: PathBuf::new(),
                jwt_issuer: String::new(),
                jwt_audience: String::new(),
                jwt_leeway_secs: 30,
            },
            changes: ChangesSettings {
                retain_bytes: 1 << 30,
            },
            webhooks: WebhookSettings {
                url: String::new(),
                secret: String::new(),
                batch_max: 100,
                timeout_ms: 5_000,
            },
            cluster: ClusterSettings::default(),
        }
    }
}

/// Why the settings could not be loaded; start-up stops with exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file named with `--config` that does not exist.
    #[error("config file {0} does not exist")]
    Missing(PathBuf),
    /// A key that is unknown, of the wrong type or unparsable.
    #[error("{0}")]
    Parse(String),
    /// A key whose value is out of range.
    #[error("{key}: {why}")]
    Invalid {
        /// The dotted key, e.g. `snapshot.keep`.
        key: &'static str,
        /// What is wrong with it.
        why: String,
    },
}

impl Settings {
    /// Loads the settings. `explicit` is the `--config` argument; without it
    /// `config.toml` is read when present, else the defaults stand.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(explicit, Env::prefixed(ENV_PREFIX).split("__"))
    }

    /// Loads with a given environment provider, so tests need not touch the
    /// process environment.
    fn load_with_env(explicit: Option<&Path>, env: Env) -> Result<Self, ConfigError> {
        let file = match explicit {
            Some(path) if !path.is_file() => return Err(ConfigError::Missing(path.to_path_buf())),
            Some(path) => path.to_path_buf(),
            None => PathBuf::from(DEFAULT_CONFIG_FILE),
        };
        let settings: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(file))
            .merge(env)
            .extract()
            .map_err(|e| ConfigError::Parse(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// HTTP workers to start: the configured number, or one per core.
    pub fn worker_count(&self) -> usize {
        match self.server.workers {
            0 => cores(),
            n => n,
        }
    }
}

impl ServerSettings {
    /// `trusted_proxies` as networks (a bare address is a /32 or /128), or
    /// the first entry that is neither.
    pub fn trusted_networks(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.trusted_proxies
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| entry.to_string())
            })
            .collect()
    }
}

impl AuthSettings {
    /// Whether organiser routes need the admin token.
    pub fn organiser_routes_open(&self) -> bool {
        self.admin_token.is_empty()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, why: &str| {
            Err(ConfigError::Invalid {
                key,
                why: why.to_string(),
            })
        };
        if self.admin_token.chars().any(|c| !c.is_ascii_graphic()) {
            return invalid(
                "auth.admin_token",
                "must be printable ASCII without spaces (it is sent in a header)",
            );
        }
        if self.jwt_leeway_secs > 3_600 {
            return invalid("auth.jwt_leeway_secs", "must be 0 to 3600");
        }
        let has_secret = !self.jwt_secret.is_empty();
        let has_key = !self.jwt_public_key_file.as_os_str().is_empty();
        if self.users == UserAuth::Jwt && self.admin_token.is_empty() {
            // Checking customers while leaving the organiser routes, the
            // change feed and /metrics open to anyone is never meant.
            return invalid(
                "auth.admin_token",
                "must be set when auth.users is \"jwt\" (else organiser routes, the change feed and /metrics are open to anyone)",
            );
        }
        if self.users == UserAuth::Jwt && has_secret == has_key {
            return invalid(
                "auth.users",
                "\"jwt\" needs exactly one of auth.jwt_secret and auth.jwt_public_key_file",
            );
        }
        Ok(())
    }
}

/// Cores this process may use (at least 1).
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(text.as_bytes()).expect("write");
        f
    }

    fn no_env() -> Env {
        Env::prefixed("BOXOFFICE_TEST_UNSET_PREFIX__").split("__")
    }

    #[test]
    fn a_logged_url_shows_neither_user_information_nor_query() {
        let cases = [
            (
                "https://user:pw@hooks.example/in?token=s3cret#f",
                "https://***@hooks.example/in?***#f",
            ),
            (
                "http://hooks.example:8080/in",
                "http://hooks.example:8080/in",
            ),
            ("http://a@b@host?x=1", "http://***@host?***"),
            ("http://host/p?q", "http://host/p?***"),
            ("not a url ? secret", "not a url ?***"),
            ("", ""),
        ];
        for (url, logged) in cases {
            assert_eq!(masked_url(url), logged, "{url}");
        }
        let settings = WebhookSettings {
            url: "https://u:p@h/x?token=t".into(),
            secret: "s".into(),
            batch_max: 1,
            timeout_ms: 1,
        };
        let shown = format!("{settings:?}");
        assert!(
            !shown.contains("u:p") && !shown.contains("token"),
            "{shown}"
        );
    }

    #[test]
    fn the_shipped_config_toml_equals_the_built_in_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_FILE);
        let loaded = Settings::load_with_env(Some(&path), no_env()).expect("config.toml loads");
        assert_eq!(loaded, Settings::default());
    }

    #[test]
    fn a_file_overrides_only_the_keys_it_names() {
        let f = file("[server]\nport = 9000\n");
        let s = Settings::load_with_env(Some(f.path()), no_env()).expect("loads");
        assert_eq!(s.server.port, 9000);
        assert_eq!(s.server.host, "127.0.0.1");
        assert_eq!(s.snapshot.keep, 3);
    }

    #[test]
    fn an_unknown_key_is_refused_by_name() {
        let f = file("[server]\nprot = 9000\n");
        let err = Settings::load_with_env(Some(f.path()), no_env()).expect_err("refused");
        assert!(err.to_string().contains("prot"), "{err}");
    }

    #[test]
    fn a_value_out_of_range_is_refused_by_key() {
        let f = file("[snapshot]\nkeep = 0\n");
        let err = Settings::load_with_env(Some(f.path()), no_env()).expect_err("refused");
        assert!(err.to_string().contains("snapshot.keep"), "{err}");
        let f = file("[server]\nport = \"eighty\"\n");
        let err = Settings::load_with_env(Some(f.path()), no_env()).expect_err("refused");
        assert!(err.to_string().contains("port"), "{err}");
    }

    #[test]
    fn a_rate_period_that_would_overflow_is_refused_by_key_not_a_panic() {
        let f = file("[rate_limit]\nperiod_secs = 18446744074\n");
        let err = Settings::load_with_env(Some(f.path()), no_env()).expect_err("refused");
        assert!(err.to_string().contains("rate_limit.period_secs"), "{err}");
    }

    #[test]
    fn jwt_users_without_an_admin_token_are_refused_by_key() {
        // Contract v4, Corrections: else the organiser routes, the feed
        // and /metrics would be open to anyone (accepted on c0394eb).
        let jwt = "[auth]\nusers = \"jwt\"\njwt_secret = \"0123456789abcdef0123456789abcdef\"\n";
        let f = file(jwt);
        let err = Settings::load_with_env(Some(f.path()), no_env()).expect_err("refused");
        assert!(err.to_string().contains("auth.admin_token"), "{err}");
        let f = file(&format!("{jwt}admin_token = \"organiser\"\n"));
        Settings::load_with_env(Some(f.path()), no_env()).expect("valid with a token");
    }

    #[test]
    fn webhook_settings_are_checked_by_key_and_the_secret_never_printed() {
        for (toml, key) in [
            (
                "[webhooks]\nurl = \"ftp://x\"\nsecret = \"s\"\n",
                "webhooks.url",
            ),
            ("[webhooks]\nurl = \"http://x\"\n", "webhooks.secret"),
            ("[webhooks]\nbatch_max = 0\n", "webhooks.batch_max"),
            ("[webhooks]\ntimeout_ms = 10\n", "webhooks.timeout_ms"),
        ] {
            let f = file(toml);
            let err = Settings::load_with_env(Some(f.path()), no_env()).expect_err("refused");
            assert!(err.to_string().contains(key), "{toml}: {err}");
        }
        let f = file("[webhooks]\nurl = \"https://hooks.example\"\nsecret = \"hush\"\n");
        let s = Settings::load_with_env(Some(f.path()), no_env()).expect("valid");
        assert!(!format!("{s:?}").contains("hush"));
    }

    #[test]
    fn a_missing_explicit_file_is_an_error() {
        let err = Settings::load_with_env(Some(Path::new("/nonexistent/boxoffice.toml")), no_env());
        assert!(matches!(err, Err(ConfigError::Missing(_))));
    }

    #[test]
    // figment::Jail's closure signature returns figment's (large) error type.
    #[allow(clippy::result_large_err)]
    fn environment_variables_override_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("BOXOFFICE__SERVER__PORT", "9001");
            jail.set_env("BOXOFFICE__RATE_LIMIT__ENABLED", "false");
            let s = Settings::load(Some(
                &Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_FILE),
            ))
            .map_err(|e| e.to_string())?;
            assert_eq!(s.server.port, 9001);
            assert!(!s.rate_limit.enabled);
            jail.set_env("BOXOFFICE__SERVER__BOGUS", "1");
            assert!(Settings::load(None).is_err(), "unknown env key is refused");
            Ok(())
        });
    }
}
