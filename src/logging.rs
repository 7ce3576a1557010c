//! The process's logger: `env_logger`, with millisecond timestamps, and
//! one correction: actix-http's connection dispatcher logs a request it
//! cannot parse (a malformed request line or header, sent by a client) at
//! ERROR, before any of our code sees it. That is the client's mistake, not
//! the service's, so it is logged at WARN, leaving ERROR for what an
//! operator must act on. The same for openraft's vote requests and
//! replication to a peer that cannot be reached: a node that is down (or
//! not started yet, as in a cluster's first seconds) is a state the
//! cluster is built to ride out, shown by `/api/cluster` and the metrics;
//! openraft logs each attempt at ERROR.

use log::{Level, LevelFilter, Log, Metadata, Record};

/// The module whose client-caused errors are demoted.
const DISPATCHER: &str = "actix_http::h1::dispatcher";
/// openraft's reports of a peer it cannot reach, each attempt at ERROR:
/// (where it logs, how the message starts). A vote request while a node
/// is down, and the leader's replication to a down follower (twice a
/// second until it is back).
const UNREACHABLE_PEER: [(&str, &str); 2] = [
    ("openraft::core", "while requesting vote"),
    ("openraft::replication", "RPCError"),
];
/// What those messages say of an unreachable peer.
const UNREACHABLE: &str = "Unreachable node";

struct Demoting {
    inner: env_logger::Logger,
}

impl Demoting {
    fn level_of(metadata: &Metadata<'_>) -> Level {
        if metadata.level() == Level::Error && metadata.target().starts_with(DISPATCHER) {
            Level::Warn
        } else {
            metadata.level()
        }
    }

    /// The level a record is written at: [`Self::level_of`] its metadata,
    /// and WARN for openraft's messages about an unreachable peer.
    fn level_of_record(record: &Record<'_>) -> Level {
        let level = Self::level_of(record.metadata());
        if level == Level::Error {
            let target = record.target();
            let mut rules = UNREACHABLE_PEER
                .iter()
                .filter(|(t, _)| target.starts_with(t));
            if let Some((_, start)) = rules.next() {
                let message = record.args().to_string();
                if message.starts_with(start) && message.contains(UNREACHABLE) {
                    return Level::Warn;
                }
            }
        }
        level
    }
}

impl Log for Demoting {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        let level = Self::level_of(metadata);
        self.inner.enabled(
            &Metadata::builder()
                .level(level)
                .target(metadata.target())
                .build(),
        )
    }

    fn log(&self, record: &Record<'_>) {
        let level = Self::level_of_record(record);
        if level == record.level() {
            self.inner.log(record);
            return;
        }
        self.inner.log(
            &Record::builder()
                .args(*record.args())
                .level(level)
                .target(record.target())
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build(),
        );
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// Installs the logger: `RUST_LOG` when set, else `default_level`.
pub fn init(default_level: &str) {
    let inner =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
            .format_timestamp_millis()
            .build();
    let max: LevelFilter = inner.filter();
    if log::set_boxed_logger(Box::new(Demoting { inner })).is_ok() {
        log::set_max_level(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_dispatchers_errors_are_demoted() {
        let meta = |level, target| Metadata::builder().level(level).target(target).build();
        assert_eq!(
            Demoting::level_of(&meta(Level::Error, "actix_http::h1::dispatcher")),
            Level::Warn
        );
        assert_eq!(
            Demoting::level_of(&meta(Level::Error, "boxoffice::startup")),
            Level::Error
        );
        assert_eq!(
            Demoting::level_of(&meta(Level::Info, "actix_http::h1::dispatcher")),
            Level::Info
        );
    }

    #[test]
    fn only_openrafts_messages_about_unreachable_peers_are_demoted() {
        let level = |target: &str, message: std::fmt::Arguments<'_>| {
            Demoting::level_of_record(
                &Record::builder()
                    .level(Level::Error)
                    .target(target)
                    .args(message)
                    .build(),
            )
        };
        assert_eq!(
            level(
                "openraft::core::raft_core",
                format_args!("while requesting vote error=Unreachable node: refused target=2")
            ),
            Level::Warn
        );
        assert_eq!(
            level(
                "openraft::core::raft_core",
                format_args!("while requesting vote error=Network error: timeout")
            ),
            Level::Error
        );
        assert_eq!(
            level(
                "boxoffice::cluster",
                format_args!("while requesting vote error=Unreachable node")
            ),
            Level::Error
        );
        assert_eq!(
            level(
                "openraft::replication",
                format_args!("RPCError err=Unreachable node: connection refused")
            ),
            Level::Warn
        );
        assert_eq!(
            level(
                "openraft::replication",
                format_args!("RPCError err=Network error: connection reset")
            ),
            Level::Error
        );
    }
}
