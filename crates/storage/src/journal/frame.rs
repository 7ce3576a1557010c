//! One record's bytes on disk: `[payload length u32][CRC32 of lsn+payload
//! u32][lsn u64][payload]`, little-endian.

use super::{Lsn, Record};
use crate::codec;

/// Bytes in a frame header.
pub const FRAME_HEADER_BYTES: usize = 16;
/// A record never encodes larger than this; anything claiming more is damage.
/// (A change's feed items are in its record: a settings change that promotes
/// a million waiting bookings writes them all, about 60 MB.)
pub const MAX_RECORD_BYTES: usize = 256 << 20;

pub(super) fn encode_frame(out: &mut Vec<u8>, lsn: Lsn, record: &Record) {
    // Records are small plain data: encoding cannot fail short of a bug. Its
    // submitter would be told the change is durable, so going on would lose
    // an acknowledged change: stop the process instead.
    let payload = match codec::encode(record) {
        Ok(p) => p,
        Err(e) => {
            log::error!("journal: cannot encode record {lsn}: {e}; stopping");
            std::process::abort();
        }
    };
    frame_payload(out, lsn, &payload);
}

/// Appends the frame of an already encoded payload (the Raft log's frames
/// are the journal's, around its own records).
pub(crate) fn frame_payload(out: &mut Vec<u8>, lsn: Lsn, payload: &[u8]) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&lsn.get().to_le_bytes());
    crc.update(payload);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&lsn.get().to_le_bytes());
    out.extend_from_slice(payload);
}

/// A frame read back: its LSN, record and total size.
pub(super) fn decode_frame(bytes: &[u8]) -> Option<(Lsn, Record, usize)> {
    let (lsn, payload, size) = frame_at(bytes)?;
    let record = codec::decode(payload).ok()?;
    Some((lsn, record, size))
}

/// The frame at the start of `bytes`, checked but not decoded: its LSN,
/// payload and total size; `None` for a short, damaged or zeroed frame.
pub(crate) fn frame_at(bytes: &[u8]) -> Option<(Lsn, &[u8], usize)> {
    let header = bytes.get(..FRAME_HEADER_BYTES)?;
    let len = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    let lsn_bytes = &header[8..16];
    if len > MAX_RECORD_BYTES {
        return None;
    }
    let payload = bytes.get(FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(lsn_bytes);
    hasher.update(payload);
    if hasher.finalize() != crc {
        return None;
    }
    Some((
        Lsn::new(u64::from_le_bytes(lsn_bytes.try_into().ok()?)),
        payload,
        FRAME_HEADER_BYTES + len,
    ))
}
