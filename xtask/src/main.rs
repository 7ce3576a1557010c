//! `cargo xtask TASK`: the repository's everyday tasks, each one command.
//! Every task runs a script or cargo command of the repository, named in
//! `--help`, so what CI does and what a developer runs are the same
//! command lines.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// One task: its name, what it does, and the command line it runs (from
/// the repository's root), extra arguments appended.
struct Task {
    name: &'static str,
    about: &'static str,
    steps: &'static [&'static [&'static str]],
}

const TASKS: &[Task] = &[
    Task {
        name: "ci",
        about: "exactly what CI runs on a clean clone (.ci/run), with its table of stage times",
        steps: &[&["bash", ".ci/run"]],
    },
    Task {
        name: "check",
        about: "fmt, clippy, the size and circle checks, and the single-node tests (the README's `cargo test`): under 3 minutes once built",
        steps: &[
            &["cargo", "fmt", "--all", "--check"],
            &["cargo", "clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"],
            &[".ci/sizes"],
            &[".ci/circles"],
            &["cargo", "test", "--locked"],
        ],
    },
    Task {
        name: "cluster",
        about: "three local nodes and HAProxy from deploy/cluster/ (proxy on :8080), stopped with Ctrl-C",
        steps: &[&["bash", "deploy/cluster/run-local.sh"]],
    },
    Task {
        name: "bench",
        about: "the HTTP benchmark harness against the lean server (bench/run.sh; about 25 minutes)",
        steps: &[&["bash", "bench/run.sh"]],
    },
    Task {
        name: "coverage",
        about: "line coverage per crate, following every process the tests start (tests/coverage.sh)",
        steps: &[&["bash", "tests/coverage.sh"]],
    },
    Task {
        name: "stress",
        about: "CI's test set N times (default 5) beside two busy CPU loops; lists every failure (tests/stress.sh N)",
        steps: &[&["bash", "tests/stress.sh"]],
    },
];

fn root() -> PathBuf {
    // xtask/ sits in the repository's root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn help() -> String {
    let mut text = String::from("usage: cargo xtask TASK [ARGS...]\n\ntasks:\n");
    for task in TASKS {
        text += &format!("  {:<9} {}\n", task.name, task.about);
        for step in task.steps {
            text += &format!("  {:<9}   runs: {}\n", "", step.join(" "));
        }
    }
    text += "\nARGS go to the last command of the task (for example `cargo xtask stress 10`).\n";
    text
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(name) = args.next() else {
        eprint!("{}", help());
        return ExitCode::from(2);
    };
    if name == "-h" || name == "--help" || name == "help" {
        print!("{}", help());
        return ExitCode::SUCCESS;
    }
    let Some(task) = TASKS.iter().find(|t| t.name == name) else {
        eprint!("unknown task {name:?}\n\n{}", help());
        return ExitCode::from(2);
    };
    let extra: Vec<String> = args.collect();
    for (i, step) in task.steps.iter().enumerate() {
        let mut command = Command::new(step[0]);
        command.args(&step[1..]).current_dir(root());
        if i + 1 == task.steps.len() {
            command.args(&extra);
        }
        match command.status() {
            Ok(status) if status.success() => {}
            Ok(status) => {
                eprintln!("xtask {name}: `{}` failed ({status})", step.join(" "));
                return ExitCode::from(status.code().map_or(1, |c| c.clamp(1, 255) as u8));
            }
            Err(e) => {
                eprintln!("xtask {name}: cannot run `{}`: {e}", step[0]);
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_a_task_runs_is_in_the_repository() {
        for task in TASKS {
            for step in task.steps {
                if step[0] == "bash" {
                    assert!(
                        root().join(step[1]).is_file(),
                        "{} runs {}",
                        task.name,
                        step[1]
                    );
                }
            }
        }
    }

    #[test]
    fn the_help_names_every_task() {
        let text = help();
        for task in TASKS {
            assert!(text.contains(task.name), "{}", task.name);
        }
    }
}
