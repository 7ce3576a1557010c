//! A cluster of 3 or 5 nodes holding the same state: the change log
//! replicated by Raft (openraft), one leader taking every change.
//!
//! - [`settings`]: the `cluster` section of the settings.
//! - [`clock_offset`]: how far this node's clock is from its peers'.
//! - [`peer_watch`]: reading the peers' clocks, and what that decides
//!   (no leadership with a wrong clock, no campaign without a majority).
//! - [`confirm`]: confirming a leadership with a majority, many askers
//!   per round (Raft's read index).
//! - [`feed`]: the change feed's own journal on a cluster node.
//! - [`forward`]: changes a follower forwards to the leader.
//! - [`log`]: the change log the actors write to, where "durable" means
//!   committed by a majority, and how committed entries reach the actors.
//! - [`state_machine`]: openraft's state machine over that log.
//! - [`network`]: peer messages over TCP, each carrying the secret.
//! - [`node`]: starting the node and the tasks that start and end its
//!   leaderships.
//! - `simulation` (tests): several nodes in one process over a network
//!   the test controls, under seeded faults.
//!
//! The Raft log itself is kept by `boxoffice-storage` (`raft`), in the
//! journal's frames.

pub mod clock_offset;
pub mod confirm;
pub mod feed;
pub mod forward;
pub mod log;
pub mod network;
pub mod node;
pub mod peer_watch;
pub mod settings;
#[cfg(test)]
mod simulation;
pub mod state_machine;
#[cfg(test)]
mod tests;

pub use log::ClusterLog;
pub use node::ClusterNode;
