//! The `boxoffice` binary: read settings, start logging, run until SIGTERM
//! or SIGINT, write a final snapshot, exit.
//!
//! Exit codes: 0 clean stop; 1 could not start or stop cleanly; 2 bad
//! command line or configuration; 3 stored data could not be read; 4 a
//! cluster node's state diverged from the cluster's log (`actors::divergence`).

use std::path::PathBuf;
use std::process::ExitCode;

use boxoffice::config::{Settings, DEFAULT_CONFIG_FILE};
use boxoffice::startup::Application;

const USAGE: &str = "usage: boxoffice [--config PATH] | --help | --version";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    /// Run, with this settings file if given.
    Run(Option<PathBuf>),
    /// Print the help text.
    Help,
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    let config_path = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(path)) => path,
        Ok(Command::Help) => {
            println!("{}", boxoffice::config::HELP);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("boxoffice {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
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
    boxoffice::logging::init(&settings.log.level);
    let source = config_path.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
    if source.exists() {
        log::info!(
            "configuration from {} (and BOXOFFICE__ variables)",
            source.display()
        );
    } else {
        log::info!(
            "no {} found: built-in defaults (and BOXOFFICE__ variables)",
            source.display()
        );
    }

    actix_web::rt::System::new().block_on(async move {
        let app = match Application::build(settings) {
            Ok(app) => app,
            Err(e) => {
                log::error!("cannot start: {e}");
                return ExitCode::from(e.exit_code());
            }
        };
        let stop = stop_signal();
        log::info!("listening on http://{}", app.address());
        match app.run_until_stopped(stop).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                log::error!("{e}");
                ExitCode::from(1)
            }
        }
    })
}

/// `--config PATH` or `--config=PATH`, `--help`, `--version`; anything else
/// is an error.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Command, String> {
    let mut config = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config = Some(args.next().ok_or("--config needs a path")?.into()),
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            other => match other.strip_prefix("--config=") {
                Some(path) => config = Some(path.into()),
                None => return Err(format!("unknown argument {other:?}")),
            },
        }
    }
    Ok(Command::Run(config))
}

/// Completes on SIGTERM or SIGINT. The handlers are installed when this is
/// called, not when the future is first polled, so a signal that arrives
/// right after "listening on" is logged stops the service cleanly instead of
/// killing it with the default action.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => tokio::select! {
                _ = term.recv() => log::info!("SIGTERM received"),
                _ = int.recv() => log::info!("SIGINT received"),
            },
            (Err(e), _) | (_, Err(e)) => {
                log::error!("cannot listen for SIGTERM or SIGINT ({e}); stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
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
        assert_eq!(parse_args(args(&[])), Ok(Command::Run(None)));
        assert_eq!(
            parse_args(args(&["--config", "a.toml"])),
            Ok(Command::Run(Some(PathBuf::from("a.toml"))))
        );
        assert_eq!(
            parse_args(args(&["--config=b.toml"])),
            Ok(Command::Run(Some(PathBuf::from("b.toml"))))
        );
        assert_eq!(parse_args(args(&["--help"])), Ok(Command::Help));
        assert_eq!(parse_args(args(&["--version"])), Ok(Command::Version));
    }

    #[test]
    fn anything_else_on_the_command_line_is_refused() {
        assert!(parse_args(args(&["--config"])).is_err());
        assert!(parse_args(args(&["--port", "1"])).is_err());
    }
}
