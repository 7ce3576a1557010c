//! What a cluster node does when a committed change cannot be applied to
//! its state: its state has diverged from the log every node agreed on (a
//! bug: the leader applied the same change to the same state). Going on
//! would answer clients from a state no other node has, so the node stops
//! at once, with an ERROR naming the change and exit code 4, as a crash
//! would stop it: nothing it had acknowledged is lost (the Raft log holds
//! it), and a restart rebuilds the state from its snapshot and that log.
//! A divergence that the restart meets again stops it again: an operator
//! sees a node that will not stay up, never one that answers wrongly.

use std::sync::Arc;

/// The exit code of a node stopped by a divergence.
pub const EXIT_CODE: u8 = 4;

/// Called with a sentence saying what could not be applied.
#[derive(Clone)]
pub struct Divergence(Arc<dyn Fn(&str) + Send + Sync>);

impl Divergence {
    /// Logs the divergence and ends the process with [`EXIT_CODE`]: the
    /// service's own.
    pub fn fail_stop() -> Self {
        Self(Arc::new(|what| {
            log::error!(
                "{what}: this node's state has diverged from the cluster's log; \
                 stopping (exit {EXIT_CODE}). A restart rebuilds the state from the \
                 log; if it stops here again, keep the data directory for a bug report \
                 and replace the node (docs/operations.md)"
            );
            log::logger().flush();
            std::process::exit(i32::from(EXIT_CODE));
        }))
    }

    /// One that calls `report` instead (tests).
    pub fn calling(report: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self(Arc::new(report))
    }

    /// Reports the divergence `what`.
    pub fn report(&self, what: &str) {
        (self.0)(what);
    }
}

impl Default for Divergence {
    fn default() -> Self {
        Self::fail_stop()
    }
}

impl std::fmt::Debug for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Divergence")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The service's handler ends the process with exit code 4 and says
    /// why: run in a child process (this test binary again, this test
    /// alone), which the handler ends.
    #[test]
    fn the_service_s_handler_ends_the_process_with_exit_code_4() {
        const CHILD: &str = "BOXOFFICE_TEST_DIVERGENCE_CHILD";
        if std::env::var_os(CHILD).is_some() {
            let _ = env_logger::builder().is_test(false).try_init();
            Divergence::default().report("event 1: a test divergence");
            return;
        }
        let exe = std::env::current_exe().expect("test binary");
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "actors::divergence::tests::the_service_s_handler_ends_the_process_with_exit_code_4",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .env("RUST_LOG", "error")
            .output()
            .expect("child runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(i32::from(EXIT_CODE)), "{stderr}");
        assert!(
            stderr.contains("event 1: a test divergence: this node's state has diverged"),
            "{stderr}"
        );
    }
}
