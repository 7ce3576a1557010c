//! The `boxoffice` binary: read settings, start logging, run until SIGTERM
//! or SIGINT, write a final snapshot, exit.
//!
//! Exit codes: 0 clean stop; 1 could not start or stop cleanly; 2 bad
//! command line or configuration; 3 stored data could not be read.

use std::path::PathBuf;
use std::process::ExitCode;

use boxoffice::config::{Settings, DEFAULT_CONFIG_FILE};
use boxoffice::startup::Application;

const USAGE: &str = "usage: boxoffice [--config PATH]";

fn main() -> ExitCode {
    let config_path = match parse_args(std::env::args().skip(1)) {
        Ok(Some(path)) => Some(path),
        Ok(None) => None,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let settings = match Settings::load(config_path.as_deref()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("boxoffice: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or(&settings.log.level),
    )
    .init();
    let source = config_path.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
    log::info!(
        "configuration from {} (and BOXOFFICE__ variables)",
        source.display()
    );

    actix_web::rt::System::new().block_on(async move {
        let app = match Application::build(settings) {
            Ok(app) => app,
            Err(e) => {
                log::error!("cannot start: {e}");
                return ExitCode::from(e.exit_code());
            }
        };
        log::info!("listening on http://{}", app.address());
        match app.run_until_stopped(stop_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                log::error!("{e}");
                ExitCode::from(1)
            }
        }
    })
}

/// `--config PATH` or `--config=PATH`; anything else is an error.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<PathBuf>, String> {
    let mut config = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config = Some(args.next().ok_or("--config needs a path")?.into()),
            "-h" | "--help" => return Err(String::from("boxoffice: a ticket booking service")),
            other => match other.strip_prefix("--config=") {
                Some(path) => config = Some(path.into()),
                None => return Err(format!("unknown argument {other:?}")),
            },
        }
    }
    Ok(config)
}

/// Completes on SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot listen for SIGTERM ({e}); stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => log::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => log::info!("SIGINT received"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn the_config_path_is_taken_in_either_spelling() {
        assert_eq!(parse_args(args(&[])), Ok(None));
        assert_eq!(
            parse_args(args(&["--config", "a.toml"])),
            Ok(Some(PathBuf::from("a.toml")))
        );
        assert_eq!(
            parse_args(args(&["--config=b.toml"])),
            Ok(Some(PathBuf::from("b.toml")))
        );
    }

    #[test]
    fn anything_else_on_the_command_line_is_refused() {
        assert!(parse_args(args(&["--config"])).is_err());
        assert!(parse_args(args(&["--port", "1"])).is_err());
        assert!(parse_args(args(&["--help"])).is_err());
    }
}
