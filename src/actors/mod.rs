//! The actor layer: one [`EventActor`] per event, the [`Registry`] that finds
//! them, and the [`Snapshotter`] that writes their state to disk.

mod counters;
pub mod divergence;
mod event_actor;
pub mod messages;
mod pending;
mod placement;
mod published;
mod registry;
#[cfg(test)]
pub mod scripted_log;
mod snapshotter;

pub use counters::{BookedAs, EventCounters};
pub use divergence::Divergence;
pub use event_actor::{EventActor, LiveReceivers, LiveSignals, MAILBOX_CAPACITY};
pub use messages::Unavailable;
pub use published::{Published, PublishedSlot};
pub use registry::{ask, CreateError, Registry};
pub use snapshotter::{
    take_snapshot, RestoredFrom, SnapshotFailed, SnapshotPolicy, Snapshotter, StopSnapshots,
};
