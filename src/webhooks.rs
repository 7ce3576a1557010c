//! Webhooks: the change feed POSTed, in index order, to one receiver
//! (`[webhooks]`). One task reads the feed after the last acknowledged
//! index, POSTs up to `batch_max` items as `{"items": [Change]}` signed
//! with `X-Boxoffice-Signature: sha256=<hex HMAC-SHA256 of the body>`, and
//! moves on only when the receiver answers 2xx; anything else, or no
//! answer within `timeout_ms`, is retried after a backoff (0.5 s doubling
//! to 60 s) with the same items: nothing is skipped. The last acknowledged
//! index is written to `webhooks.ack` in the data directory (a temporary
//! file, fsync, rename) at most every [`ACK_SAVE_INTERVAL`] while
//! deliveries stream, and at once when the sender has caught up, is told
//! to stop or stops leading, so a restart resumes after it: each change
//! arrives at least once, in order (after a crash, up to a second of
//! deliveries comes again); the receiver drops indexes it has seen.
//!
//! The sender only reads the journal: a receiver that is down costs the
//! service nothing but the journal it keeps for the feed. If it stays down
//! longer than `changes.retain_bytes` covers, the changes released
//! meanwhile cannot be delivered: the sender logs the gap, counts a
//! failure and goes on from the oldest change still kept.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::watch;

use crate::changes::{ChangeFeed, PageError};
use crate::config::WebhookSettings;
use crate::http::api::change_bodies::ChangeJson;

/// The file, in the data directory, holding the last acknowledged index.
pub const ACK_FILE: &str = "webhooks.ack";
/// The first wait after a failed delivery.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The longest the acknowledged index goes unwritten while deliveries
/// stream. Each write costs two fsyncs on the disk the journal syncs
/// bookings to; after every delivery that was hundreds a second under load
/// (`bench/feed.sh` showed no difference on the test machine's disk, 0.85
/// before and 0.84 after, within its noise; a disk with slower syncs
/// pays more). A crash delivers again what was acknowledged since the
/// last write: at least once still holds.
pub const ACK_SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// What `/metrics` shows of the deliveries.
#[derive(Debug, Default)]
pub struct WebhookStats {
    /// The last index the receiver acknowledged.
    delivered_index: AtomicU64,
    /// Deliveries that failed (non-2xx, no answer, changes no longer kept).
    failures: AtomicU64,
}

impl WebhookStats {
    /// Writes the webhook families.
    pub fn encode(
        &self,
        encoder: &mut boxoffice_metrics::prometheus_client::encoding::DescriptorEncoder,
    ) -> std::fmt::Result {
        use boxoffice_metrics::{counter, gauge};
        gauge(
            encoder,
            "boxoffice_webhook_delivered_index",
            "The last change index the webhook receiver acknowledged",
            i64::try_from(self.delivered_index.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
        )?;
        counter(
            encoder,
            "boxoffice_webhook_failures",
            "Webhook deliveries that failed (non-2xx, no reply in time, changes no longer kept)",
            &self.failures,
        )
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`: the value
/// of `X-Boxoffice-Signature`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for byte in digest {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The last acknowledged index kept in `dir`, 0 when none was written. An
/// unreadable file is logged and read as 0: delivering again is safe,
/// skipping is not.
pub fn read_ack(dir: &Path) -> u64 {
    let path = dir.join(ACK_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| {
            log::warn!(
                "{}: not an index ({:?}); delivering from the start of the feed",
                path.display(),
                text.trim()
            );
            0
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => {
            log::warn!(
                "{}: {e}; delivering from the start of the feed",
                path.display()
            );
            0
        }
    }
}

/// Writes `index` as the last acknowledged one, crash-safely: a reader
/// finds the old value or the new one, never a torn file.
pub fn write_ack(dir: &Path, index: u64) -> io::Result<()> {
    crate::persistence::file::replace_file(
        dir,
        &dir.join(ACK_FILE),
        format!("{index}\n").as_bytes(),
    )
}

/// The sender.
pub struct Webhooks {
    url: String,
    secret: Vec<u8>,
    batch_max: usize,
    client: reqwest::Client,
    feed: Arc<ChangeFeed>,
    /// The data directory, where the acknowledged index is kept.
    dir: PathBuf,
    stats: Arc<WebhookStats>,
    /// On a cluster node: whether it leads now. Only the leader delivers;
    /// a new leader goes on from the index it last acknowledged itself
    /// (items another leader delivered since may come again: at least
    /// once, in order).
    leading: Option<Arc<dyn Fn() -> bool + Send + Sync>>,
}

/// How often a cluster node that does not lead looks again.
const NOT_LEADING_RECHECK: Duration = Duration::from_millis(250);

impl Webhooks {
    /// A sender of `feed` as `settings` say, keeping its place in `dir`;
    /// `None` when webhooks are off (no URL).
    pub fn new(
        settings: &WebhookSettings,
        feed: Arc<ChangeFeed>,
        dir: &Path,
        stats: Arc<WebhookStats>,
    ) -> Result<Option<Self>, reqwest::Error> {
        if settings.url.is_empty() {
            return Ok(None);
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms))
            // A redirect is a failed delivery (contract, Corrections):
            // followed, a 302 would turn the POST into a bodiless GET that
            // "succeeds", and a 307 would send every change elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("boxoffice/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Some(Self {
            url: settings.url.clone(),
            secret: settings.secret.as_bytes().to_vec(),
            batch_max: settings.batch_max,
            client,
            feed,
            dir: dir.to_path_buf(),
            stats,
            leading: None,
        }))
    }

    /// Delivers only while `leading` says so (a cluster node).
    pub fn while_leading(mut self, leading: Arc<dyn Fn() -> bool + Send + Sync>) -> Self {
        self.leading = Some(leading);
        self
    }

    /// Delivers until `stop` turns true; the acknowledged index is written
    /// before it returns.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        let mut kept = KeptAck::read(&self.dir);
        self.stats
            .delivered_index
            .store(kept.acked, Ordering::Relaxed);
        log::info!(
            "webhooks: delivering changes after {} to {}",
            kept.acked,
            crate::config::masked_url(&self.url)
        );
        self.deliver_until_stopped(&mut kept, stop).await;
        kept.save().await;
    }

    /// The delivery loop; returns when `stop` turns true, leaving the last
    /// write of the index to [`Webhooks::run`].
    async fn deliver_until_stopped(&self, kept: &mut KeptAck, mut stop: watch::Receiver<bool>) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            if *stop.borrow() {
                return;
            }
            let acked = kept.acked;
            if self.leading.as_ref().is_some_and(|leading| !leading()) {
                // The next leader may start from this index.
                kept.save().await;
                tokio::select! {
                    _ = tokio::time::sleep(NOT_LEADING_RECHECK) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                continue;
            }
            let items = match self.feed.page(acked, self.batch_max).await {
                Ok(items) if items.is_empty() => {
                    kept.save().await;
                    tokio::select! {
                        _ = self.feed.wait_beyond(acked, self.batch_max) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                    continue;
                }
                Ok(items) => items,
                Err(PageError::Gone { earliest, .. }) => {
                    log::error!(
                        "webhooks: changes {} to {earliest} are no longer kept (changes.retain_bytes) and were never delivered; going on after {earliest}",
                        acked + 1
                    );
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    kept.acked = earliest;
                    kept.save().await;
                    continue;
                }
                Err(PageError::Unreadable) => {
                    if !pause(&mut stop, &mut backoff).await {
                        return;
                    }
                    continue;
                }
            };
            let last = items.last().map_or(acked, |e| e.index);
            let body = match serde_json::to_vec(&Delivery {
                items: items.into_iter().map(ChangeJson::from).collect(),
            }) {
                Ok(body) => body,
                Err(e) => {
                    log::error!("webhooks: cannot encode a delivery: {e}");
                    return;
                }
            };
            match self.deliver(body).await {
                Ok(()) => {
                    kept.acked = last;
                    self.stats.delivered_index.store(last, Ordering::Relaxed);
                    kept.save_if_due().await;
                    backoff = FIRST_BACKOFF;
                }
                Err(why) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    log::warn!(
                        "webhooks: delivering changes {} to {last} failed ({why}); retrying in {} ms",
                        acked + 1,
                        backoff.as_millis()
                    );
                    if !pause(&mut stop, &mut backoff).await {
                        return;
                    }
                }
            }
        }
    }

    /// POSTs one signed body; `Err` says why it was not acknowledged.
    async fn deliver(&self, body: Vec<u8>) -> Result<(), String> {
        let signed = signature(&self.secret, &body);
        let answer = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Boxoffice-Signature", signed)
            .body(body)
            .send()
            .await
            // Its text would name the URL, secrets and all.
            .map_err(|e| e.without_url().to_string())?;
        let status = answer.status();
        if status.is_success() {
            Ok(())
        } else if status.is_redirection() {
            let to = answer
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map_or_else(|| "nowhere".to_string(), crate::config::masked_url);
            Err(format!(
                "answered {status}, a redirect to {to}, which is not followed"
            ))
        } else {
            Err(format!("answered {status}"))
        }
    }
}

/// The acknowledged index and what of it is written in the data directory.
struct KeptAck {
    dir: PathBuf,
    /// The last index the receiver acknowledged.
    acked: u64,
    /// The index `webhooks.ack` holds.
    saved: u64,
    /// When it was last written.
    saved_at: tokio::time::Instant,
}

impl KeptAck {
    fn read(dir: &Path) -> Self {
        let acked = read_ack(dir);
        Self {
            dir: dir.to_path_buf(),
            acked,
            saved: acked,
            saved_at: tokio::time::Instant::now(),
        }
    }

    /// Writes the index when [`ACK_SAVE_INTERVAL`] has passed since the last
    /// write.
    async fn save_if_due(&mut self) {
        if self.saved_at.elapsed() >= ACK_SAVE_INTERVAL {
            self.save().await;
        }
    }

    /// Writes the index if the file holds an older one; a failure only
    /// means the next start delivers some changes again.
    async fn save(&mut self) {
        if self.saved == self.acked {
            return;
        }
        let (dir, acked) = (self.dir.clone(), self.acked);
        let written = actix_web::rt::task::spawn_blocking(move || write_ack(&dir, acked)).await;
        match written {
            Ok(Ok(())) => self.saved = acked,
            Ok(Err(e)) => log::warn!("webhooks: cannot keep the acknowledged index: {e}"),
            Err(e) => log::warn!("webhooks: cannot keep the acknowledged index: {e}"),
        }
        self.saved_at = tokio::time::Instant::now();
    }
}

/// What one delivery POSTs.
#[derive(serde::Serialize)]
struct Delivery {
    items: Vec<ChangeJson>,
}

/// Waits out `backoff` (doubling it for next time, up to the maximum);
/// false when told to stop meanwhile.
async fn pause(stop: &mut watch::Receiver<bool>, backoff: &mut Duration) -> bool {
    let wait = *backoff;
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = stop.wait_for(|s| *s) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231, test case 2.
    #[test]
    fn the_signature_is_the_hex_hmac_sha256_of_the_body() {
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_acknowledged_index_survives_and_a_bad_file_reads_as_zero() {
        let dir = tempfile::tempdir().expect("dir");
        assert_eq!(read_ack(dir.path()), 0);
        write_ack(dir.path(), 41).expect("write");
        write_ack(dir.path(), 42).expect("write");
        assert_eq!(read_ack(dir.path()), 42);
        fs::write(dir.path().join(ACK_FILE), "garbage").expect("write");
        assert_eq!(read_ack(dir.path()), 0);
    }
}
