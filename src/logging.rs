//! The process's logger: `env_logger`, with millisecond timestamps, and
//! one correction: actix-http's connection dispatcher logs a request it
//! cannot parse (a malformed request line or header, sent by a client) at
//! ERROR, before any of our code sees it. That is the client's mistake, not
//! the service's, so it is logged at WARN, leaving ERROR for what an
//! operator must act on.

use log::{Level, LevelFilter, Log, Metadata, Record};

/// The module whose client-caused errors are demoted.
const DISPATCHER: &str = "actix_http::h1::dispatcher";

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
        let level = Self::level_of(record.metadata());
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
}
