//! `GET /api/events/{eventId}/seats/live`: a seated event's map as
//! Server-Sent Events: at once `event: seats` with the whole map, then
//! `event: seat_changes` with the seats that changed since the stream's
//! last message.
//!
//! Why frames: an on-sale has thousands of watchers of one map of up to
//! 200,000 seats, so nothing per watcher may cost a pass over the map. The
//! event's streams share *frames*: the seat letters as of one durable
//! change, each with the seats that differ from the frame before. A frame
//! is made at most once per `live.min_interval_ms` (one read of the map
//! from the event's actor, by whichever stream needs it first), so frames
//! coalesce changes under the same budget as every stream. A stream sends
//! the changes of the frames since its last one, merged; streams that wake
//! at the same frames share one serialisation. A stream whose last frame
//! has left the window (it fell behind: a stalled client) gets the whole
//! map instead of a backlog, and so does one whose merged changes would
//! be the longer message (with 10,000 watchers each stream sends once a
//! second, and a second of an on-sale can change tens of thousands of
//! seats). Only the newest frame keeps the letters (one copy of the map an
//! event), older ones their diffs.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};

use actix_web_lab::sse;
use bytestring::ByteString;
use futures_util::{Stream, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::domain::seating::{Layout, SeatIx};
use crate::domain::EventId;
use crate::http::api::error::ApiError;
use crate::http::api::live::{client_gone, Budget, Live};
use crate::http::api::seat_bodies::SeatMapJson;
use crate::http::transport::stream::ClientGone;
use crate::persistence::journal::Lsn;
use crate::service::BoxOffice;

/// Frames kept per event: a stream more than this many frames behind gets
/// the whole map.
const FRAMES_KEPT: usize = 64;
/// Merged change messages kept per event (by first and last frame).
const MERGED_KEPT: usize = 64;

/// The frames of every watched seated event. An event's frames go when
/// its last watcher does, so what is kept grows with the events being
/// watched, not with every event ever watched.
#[derive(Default)]
pub struct SeatFrameCache {
    events: dashmap::DashMap<EventId, Arc<SeatFrames>>,
}

/// One event's frames.
#[derive(Default)]
struct SeatFrames {
    /// The map's layout, from the first frame on.
    layout: OnceLock<Arc<Layout>>,
    /// Frames, oldest first, and what only the newest needs.
    state: Mutex<FramesState>,
    /// One frame is made at a time.
    making: tokio::sync::Mutex<()>,
    /// Streams of the event open now.
    watchers: std::sync::atomic::AtomicUsize,
}

/// Older frames keep only their diffs: one copy of the letters (the
/// newest frame's) and at most one whole-map message per event.
#[derive(Default)]
struct FramesState {
    frames: VecDeque<Arc<Frame>>,
    /// Every seat's letter as of the newest frame.
    letters: Vec<u8>,
    /// The whole-map message data of the newest frame, once made.
    whole: Option<(u64, ByteString)>,
    /// The length of the last whole-map data made (maps differ little in
    /// length, so the last one serves as the measure); 0 before any.
    whole_len: usize,
    merged: HashMap<(u64, u64), ByteString>,
}

/// One durable change's place in the stream.
struct Frame {
    /// The stream id of that change (grows with every change).
    id: u64,
    lsn: Lsn,
    /// The change signal the frame includes everything up to.
    signal: u64,
    made: Instant,
    /// Seats whose letter differs from the frame before, with the new one.
    diff: Vec<(SeatIx, u8)>,
}

impl SeatFrameCache {
    /// A stream of event `id`'s map: the whole map at once, then changes.
    /// 404 for no such event, 409 `NOT_SEATED` for an unseated one.
    pub async fn open(
        self: &Arc<Self>,
        live: &Arc<Live>,
        service: Arc<BoxOffice>,
        id: EventId,
        client: Option<std::net::IpAddr>,
        gone: Option<Arc<ClientGone>>,
    ) -> Result<impl Stream<Item = sse::Event> + use<>, ApiError> {
        let slot = live.admit(client)?;
        let mut changes = service.changes(id).ok_or(ApiError::EventNotFound)?.any;
        let signal = *changes.borrow_and_update();
        let frames = {
            // Counted under the map's lock, so a leaving watcher's
            // removal never takes frames another is about to use.
            let entry = self.events.entry(id).or_default();
            entry.watchers.fetch_add(1, Ordering::AcqRel);
            Arc::clone(entry.value())
        };
        let watching = Watcher {
            cache: Arc::clone(self),
            id,
            frames: Arc::clone(&frames),
        };
        let budget = live.budget(id);
        let frame = frames.newest(&service, id, signal, &budget).await?;
        let stream = SeatWatch {
            id,
            frames,
            service,
            budget,
            changes,
            stop: live.stopping(),
            last: None,
            first: Some(frame),
            last_sent: Instant::now(),
            _watcher: watching,
            _slot: slot,
        };
        Ok(futures_util::stream::unfold(stream, SeatWatch::next).take_until(client_gone(gone)))
    }
}

/// Counts one stream among its event's watchers; the last one out takes
/// the event's frames with it.
struct Watcher {
    cache: Arc<SeatFrameCache>,
    id: EventId,
    frames: Arc<SeatFrames>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if self.frames.watchers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.cache
                .events
                .remove_if(&self.id, |_, f| f.watchers.load(Ordering::Acquire) == 0);
        }
    }
}

impl SeatFrames {
    /// A frame that includes every change up to `signal`: the newest one
    /// if it does, else a new one, made no sooner than `min_interval`
    /// after the newest (so frames coalesce changes).
    async fn newest(
        &self,
        service: &BoxOffice,
        id: EventId,
        signal: u64,
        budget: &Budget,
    ) -> Result<Arc<Frame>, ApiError> {
        if let Some(frame) = self.current(signal) {
            return Ok(frame);
        }
        let _making = self.making.lock().await;
        // Another stream may have made it while this one waited.
        if let Some(frame) = self.current(signal) {
            return Ok(frame);
        }
        if let Some(previous) = self.last() {
            tokio::time::sleep_until(previous.made + budget.min_interval).await;
        }
        let (layout, letters, lsn) = service.seat_letters_at(id).await?;
        let _ = self.layout.set(layout);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let frame = match state.frames.back().cloned() {
            // No change since: the same frame, now known to include more
            // signals (it keeps its place, its diff and its message).
            Some(previous) if previous.lsn == lsn => {
                state.frames.pop_back();
                Frame {
                    signal,
                    made: Instant::now(),
                    diff: previous.diff.clone(),
                    id: previous.id,
                    lsn,
                }
            }
            previous => {
                let diff = match &previous {
                    Some(_) => diff(&state.letters, &letters),
                    None => Vec::new(),
                };
                state.letters = letters;
                state.whole = None;
                Frame {
                    id: service
                        .live_id(id, lsn)
                        .max(previous.map_or(0, |p| p.id + 1)),
                    lsn,
                    signal,
                    made: Instant::now(),
                    diff,
                }
            }
        };
        let frame = Arc::new(frame);
        state.frames.push_back(Arc::clone(&frame));
        if state.frames.len() > FRAMES_KEPT {
            state.frames.pop_front();
        }
        Ok(frame)
    }

    fn last(&self) -> Option<Arc<Frame>> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.frames.back().cloned()
    }

    /// The newest frame, if it includes every change up to `signal`.
    fn current(&self, signal: u64) -> Option<Arc<Frame>> {
        self.last().filter(|f| f.signal >= signal)
    }

    /// The `seat_changes` data taking a client from frame `from` to frame
    /// `to`, or `None` when `from` has left the window.
    fn changes(&self, from: u64, to: &Frame) -> Option<ByteString> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(made) = state.merged.get(&(from, to.id)) {
            return Some(made.clone());
        }
        let start = state.frames.iter().position(|f| f.id == from)?;
        let mut merged = BTreeMap::new();
        for frame in state.frames.iter().skip(start + 1) {
            merged.extend(frame.diff.iter().copied());
            if frame.id == to.id {
                break;
            }
        }
        let layout = self.layout.get()?;
        let seats: serde_json::Map<String, serde_json::Value> = merged
            .into_iter()
            .map(|(seat, letter)| (layout.seat_id(seat), String::from(letter as char).into()))
            .collect();
        let json = serde_json::json!({"index": to.id, "seats": seats}).to_string();
        let json = ByteString::from(json);
        if state.merged.len() >= MERGED_KEPT {
            state.merged.clear();
        }
        state.merged.insert((from, to.id), json.clone());
        Some(json)
    }

    /// The length of the last whole-map message made, if one was.
    fn whole_len(&self) -> Option<usize> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        Some(state.whole_len).filter(|&len| len > 0)
    }

    /// The whole-map data of the newest frame, and its id.
    fn whole(&self, event: EventId) -> Option<(u64, ByteString)> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let newest = state.frames.back()?.id;
        if let Some((id, data)) = &state.whole {
            if *id == newest {
                return Some((*id, data.clone()));
            }
        }
        let body = SeatMapJson {
            event_id: event.get(),
            index: newest,
            sections: self.layout.get()?.view(&state.letters),
        };
        let data = ByteString::from(serde_json::to_string(&body).ok()?);
        state.whole_len = data.len();
        state.whole = Some((newest, data.clone()));
        Some((newest, data))
    }
}

/// The seats whose letter differs between two frames' letters.
fn diff(before: &[u8], after: &[u8]) -> Vec<(SeatIx, u8)> {
    before
        .iter()
        .zip(after)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(seat, (_, &b))| (seat as SeatIx, b))
        .collect()
}

/// One open stream of a map.
struct SeatWatch {
    id: EventId,
    frames: Arc<SeatFrames>,
    service: Arc<BoxOffice>,
    budget: Budget,
    changes: watch::Receiver<u64>,
    stop: watch::Receiver<bool>,
    /// The id of the frame the client has.
    last: Option<u64>,
    /// The first frame, not yet sent.
    first: Option<Arc<Frame>>,
    last_sent: Instant,
    _watcher: Watcher,
    _slot: crate::http::api::live::Slot,
}

impl SeatWatch {
    async fn next(mut self) -> Option<(sse::Event, Self)> {
        if let Some(first) = self.first.take() {
            return Some((self.message_for(&first), self));
        }
        loop {
            self.budget
                .next_turn(&mut self.changes, &mut self.stop, self.last_sent)
                .await?;
            let signal = *self.changes.borrow_and_update();
            loop {
                let newest = tokio::select! {
                    frame = self.frames.newest(&self.service, self.id, signal, &self.budget) => frame,
                    _ = self.stop.wait_for(|stopping| *stopping) => return None,
                };
                match newest {
                    Ok(frame) if Some(frame.id) == self.last => break,
                    Ok(frame) => return Some((self.message_for(&frame), self)),
                    Err(ApiError::EventNotFound) => return None,
                    Err(_) => self.budget.pause(&mut self.stop).await?,
                }
            }
        }
    }

    /// The changes since the client's frame, or the whole map (of the
    /// newest frame, which may be newer than `frame`) when the client's
    /// frame left the window or the changes would be the longer message
    /// (a second of an on-sale can change more seats than the map's
    /// letters weigh as a whole: some 17 bytes a changed seat against 1.7
    /// a seat).
    fn message_for(&mut self, frame: &Frame) -> sse::Event {
        let changes = self
            .last
            .and_then(|from| self.frames.changes(from, frame))
            .filter(|changes| {
                self.frames
                    .whole_len()
                    .is_none_or(|whole| changes.len() <= whole)
            });
        let (kind, data, id) = match changes {
            Some(data) => ("seat_changes", data, frame.id),
            None => match self.frames.whole(self.id) {
                Some((id, data)) => ("seats", data, id),
                // Only before any frame exists, which `open` rules out.
                None => ("seats", ByteString::from_static("{}"), frame.id),
            },
        };
        self.last = Some(id);
        self.last_sent = Instant::now();
        sse::Data::new(data).event(kind).id(id.to_string()).into()
    }
}
