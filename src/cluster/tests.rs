//! The Raft log store and state machine against openraft's own storage
//! suite (with the simulation's model as the state), and the log store's
//! durability across a reopen and a purge.

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::testing::{blank_ent, log_id, Suite};
use openraft::{Entry, EntryPayload, RaftLogReader, StorageError, Vote};

use super::log::ClusterLog;
use super::state_machine::StateMachine;
use crate::persistence::journal::{Lsn, Record};
use crate::persistence::raft::{LogStoreOptions, NodeId, Proposal, RaftLogStore, TypeConfig};

type Store = RaftLogStore;
type Case = fn(
    Store,
    StateMachine,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<(), StorageError<NodeId>>>>,
>;

fn options(dir: &std::path::Path) -> LogStoreOptions {
    LogStoreOptions {
        dir: dir.to_path_buf(),
        sync_every_batch: true,
        sync_interval: std::time::Duration::from_millis(10),
    }
}

/// Runs one suite case on a fresh store and state machine.
fn run(name: &str, case: Case) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RaftLogStore::open(&options(dir.path())).expect("log opens");
    let (log, _queue) = ClusterLog::new(1, Lsn::FIRST);
    let _model = super::simulation::Model::applying(&log, Default::default());
    let machine = StateMachine::open(log, dir.path()).expect("state machine opens");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = runtime.block_on(case(store.clone(), machine));
    store.close();
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        vec![$((stringify!($name), (|s, m| Box::pin(Suite::<TypeConfig, Store, StateMachine, Builder, tempfile::TempDir>::$name(s, m))) as Case)),*]
    };
}

/// Stores for the cases that build their own (`transfer_snapshot`); the
/// others get theirs from [`run`].
struct Builder;

impl openraft::testing::StoreBuilder<TypeConfig, Store, StateMachine, tempfile::TempDir>
    for Builder
{
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, Store, StateMachine), StorageError<NodeId>> {
        let failed = |e: std::io::Error| StorageError::from(openraft::StorageIOError::read(&e));
        let dir = tempfile::tempdir().map_err(failed)?;
        let store = RaftLogStore::open(&options(dir.path())).map_err(failed)?;
        let (log, _queue) = ClusterLog::new(1, Lsn::FIRST);
        let _model = super::simulation::Model::applying(&log, Default::default());
        let machine = StateMachine::open(log, dir.path()).map_err(failed)?;
        Ok((dir, store, machine))
    }
}

#[test]
fn the_log_store_and_state_machine_pass_openraft_s_storage_suite() {
    let cases: Vec<(&str, Case)> = cases![
        snapshot_meta,
        get_initial_state_membership_from_log_and_sm,
        get_initial_state_last_log_lt_sm,
        get_initial_state_log_ids,
        get_initial_state_re_apply_committed,
        last_membership_in_log_initial,
        last_membership_in_log,
        last_membership_in_log_multi_step,
        get_membership_initial,
        get_membership_from_log_and_empty_sm,
        get_membership_from_empty_log_and_sm,
        get_membership_from_log_le_sm_last_applied,
        get_membership_from_log_gt_sm_last_applied_1,
        get_membership_from_log_gt_sm_last_applied_2,
        get_initial_state_without_init,
        get_initial_state_with_state,
        get_initial_state_last_log_gt_sm,
        save_vote,
        get_log_entries,
        limited_get_log_entries,
        try_get_log_entry,
        initial_logs,
        get_log_state,
        get_log_id,
        last_id_in_log,
        last_applied_state,
        purge_logs_upto_0,
        purge_logs_upto_5,
        purge_logs_upto_20,
        delete_logs_since_11,
        delete_logs_since_0,
        append_to_log,
        apply_single,
        apply_multiple,
    ];
    for (name, case) in cases {
        run(name, case);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(Suite::<
            TypeConfig,
            Store,
            StateMachine,
            Builder,
            tempfile::TempDir,
        >::transfer_snapshot(&Builder))
        .expect("transfer_snapshot");
}

fn proposal_entry(term: u64, index: u64, user: &str) -> Entry<TypeConfig> {
    let record = Record::Cancelled {
        event: crate::domain::EventId::try_from(1).expect("id"),
        user: crate::domain::UserId::try_from(user).expect("user"),
        at: crate::domain::Timestamp::from_millis(0),
    };
    Entry {
        log_id: log_id(term, 1, index),
        payload: EntryPayload::Normal(Proposal {
            origin: 1,
            leadership: term,
            records: vec![(Lsn::new(index), record)],
        }),
    }
}

#[tokio::test]
async fn what_was_appended_truncated_purged_and_voted_is_there_after_a_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = RaftLogStore::open(&options(dir.path())).expect("opens");
    let entries: Vec<_> = (1..=6).map(|i| proposal_entry(1, i, "u")).collect();
    store.blocking_append(entries).await.expect("appended");
    store.truncate(log_id(1, 1, 5)).await.expect("truncated");
    store.purge(log_id(1, 1, 1)).await.expect("purged");
    store
        .blocking_append(vec![blank_ent::<TypeConfig>(2, 1, 5)])
        .await
        .expect("appended after the truncation");
    let vote = Vote::new_committed(2, 1);
    store.save_vote(&vote).await.expect("vote saved");
    store.close();

    let mut reopened = RaftLogStore::open(&options(dir.path())).expect("reopens");
    let kept = reopened.try_get_log_entries(0..100).await.expect("read");
    let indexes: Vec<u64> = kept.iter().map(|e| e.log_id.index).collect();
    assert_eq!(indexes, vec![2, 3, 4, 5]);
    assert_eq!(kept[3].log_id, log_id(2, 1, 5));
    assert_eq!(kept[0], proposal_entry(1, 2, "u"));
    assert_eq!(reopened.read_vote().await.expect("vote"), Some(vote));
    let state = reopened.get_log_state().await.expect("state");
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 1)));
    assert_eq!(state.last_log_id, Some(log_id(2, 1, 5)));
    reopened.close();
}

/// Replication's read gives the entries from the start it asked for, or
/// none once that start was purged: never a later suffix, which openraft
/// would send after a `prev_log_id` it does not follow.
#[tokio::test]
async fn replication_reads_nothing_from_a_purged_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = RaftLogStore::open(&options(dir.path())).expect("opens");
    let entries: Vec<_> = (1..=10).map(|i| proposal_entry(1, i, "u")).collect();
    store.blocking_append(entries).await.expect("appended");
    store.purge(log_id(1, 1, 4)).await.expect("purged");
    let indexes = |got: Vec<crate::persistence::raft::Entry>| -> Vec<u64> {
        got.iter().map(|e| e.log_id.index).collect()
    };
    let from_purged = store.limited_get_log_entries(3, 8).await.expect("read");
    assert_eq!(indexes(from_purged), Vec::<u64>::new());
    let from_kept = store.limited_get_log_entries(5, 8).await.expect("read");
    assert_eq!(indexes(from_kept), vec![5, 6, 7]);
    // openraft's storage suite wants the suffix from the general read.
    let suffix = store.try_get_log_entries(3..8).await.expect("read");
    assert_eq!(indexes(suffix), vec![5, 6, 7]);
    store.close();
}

#[tokio::test]
async fn a_write_cut_short_at_the_end_is_cut_off_and_damage_before_it_stops_the_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = RaftLogStore::open(&options(dir.path())).expect("opens");
    let entries: Vec<_> = (1..=3).map(|i| proposal_entry(1, i, "u")).collect();
    store.blocking_append(entries).await.expect("appended");
    store.close();
    let path = dir.path().join(crate::persistence::raft::LOG_FILE);
    let whole = std::fs::read(&path).expect("read");

    // Half of a fourth frame: cut, the three before kept.
    let mut torn = whole.clone();
    torn.extend_from_slice(&whole[..whole.len() / 3 / 2]);
    std::fs::write(&path, &torn).expect("write");
    let mut reopened = RaftLogStore::open(&options(dir.path())).expect("a torn end is cut");
    assert_eq!(
        reopened
            .try_get_log_entries(0..10)
            .await
            .expect("read")
            .len(),
        3
    );
    reopened.close();
    assert_eq!(std::fs::read(&path).expect("read"), whole);

    // A flipped byte in the first frame, with frames after it: refused.
    let mut damaged = whole.clone();
    damaged[20] ^= 0xff;
    std::fs::write(&path, &damaged).expect("write");
    let error = RaftLogStore::open(&options(dir.path())).expect_err("damage is not a torn end");
    assert!(
        error.to_string().contains("damaged frame at byte 0"),
        "{error}"
    );
}

#[tokio::test]
async fn a_purge_rewrites_the_file_with_only_what_is_kept() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(crate::persistence::raft::LOG_FILE);
    let mut store = RaftLogStore::open(&options(dir.path())).expect("opens");
    let entries: Vec<_> = (1..=100).map(|i| proposal_entry(1, i, "u")).collect();
    store.blocking_append(entries).await.expect("appended");
    let vote = Vote::new_committed(1, 1);
    store.save_vote(&vote).await.expect("vote saved");
    store
        .save_committed(Some(log_id(1, 1, 100)))
        .await
        .expect("commit mark");
    let whole = std::fs::metadata(&path).expect("file").len();

    store.purge(log_id(1, 1, 90)).await.expect("purged");
    store
        .blocking_append(vec![proposal_entry(1, 101, "v")])
        .await
        .expect("appended after the purge");
    store.close();
    let after = std::fs::metadata(&path).expect("file").len();
    assert!(
        after * 5 < whole,
        "the file holds 11 of 100 entries: {after} bytes of {whole}"
    );

    let mut reopened = RaftLogStore::open(&options(dir.path())).expect("reopens");
    let kept = reopened.try_get_log_entries(0..200).await.expect("read");
    let indexes: Vec<u64> = kept.iter().map(|e| e.log_id.index).collect();
    assert_eq!(indexes, (91..=101).collect::<Vec<_>>());
    assert_eq!(kept[10], proposal_entry(1, 101, "v"));
    assert_eq!(reopened.read_vote().await.expect("vote"), Some(vote));
    assert_eq!(
        reopened.read_committed().await.expect("commit mark"),
        Some(log_id(1, 1, 100))
    );
    let state = reopened.get_log_state().await.expect("state");
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 90)));
    reopened.close();
}
