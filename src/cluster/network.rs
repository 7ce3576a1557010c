//! Peer traffic: openraft's three calls, and changes a follower forwards
//! to the leader (`forward.rs`), as framed messages over TCP, on each
//! node's own peer listener (`cluster.nodes[].peer`).
//!
//! A request is `[length u32][SHA-256 of cluster.secret, 32 bytes][bincode
//! request]` and its answer `[length u32][bincode answer]`, one at a time
//! on a connection. The server compares the digest in constant time and
//! closes the connection, answering nothing and changing nothing, when it
//! differs: a node with the wrong secret can neither vote, nor append, nor
//! be sent a change.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::Raft;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::forward::{ForwardAnswer, Forwarded, LocalHttp};
use crate::persistence::codec;
use crate::persistence::raft::{Member, NodeId, TypeConfig};

/// The largest message accepted (a batch of entries).
const MAX_MESSAGE_BYTES: usize = 512 << 20;
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// What one peer asks another.
#[derive(Debug, Serialize, Deserialize)]
enum PeerRequest {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    /// Added last, so the others keep their encoding: a node without it
    /// fails to decode it and closes the connection (the follower then
    /// answers `NOT_LEADER`, as before forwarding).
    Forward(Forwarded),
    /// This node's wall clock (ms since the epoch) as it asks for the
    /// peer's (`clock_offset.rs`).
    Clock(i64),
}

/// Its answer; an error as text (the caller only needs to know it failed).
#[derive(Debug, Serialize, Deserialize)]
enum PeerResponse {
    Append(Result<AppendEntriesResponse<NodeId>, String>),
    Vote(Result<VoteResponse<NodeId>, String>),
    Snapshot(Result<InstallSnapshotResponse<NodeId>, String>),
    Forward(Result<ForwardAnswer, String>),
    /// The answering node's wall clock (ms since the epoch).
    Clock(i64),
}

/// The digest every request carries.
pub type SecretDigest = [u8; 32];

/// The digest of `secret`.
pub fn digest(secret: &str) -> SecretDigest {
    Sha256::digest(secret.as_bytes()).into()
}

async fn read_message(
    stream: &mut TcpStream,
    digest: Option<&mut SecretDigest>,
) -> io::Result<Vec<u8>> {
    let len = stream.read_u32_le().await? as usize;
    if len > MAX_MESSAGE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "peer message too large",
        ));
    }
    if let Some(digest) = digest {
        stream.read_exact(digest).await?;
    }
    let mut bytes = vec![0; len];
    stream.read_exact(&mut bytes).await?;
    Ok(bytes)
}

async fn write_message(
    stream: &mut TcpStream,
    digest: Option<&SecretDigest>,
    bytes: &[u8],
) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "peer message too large"))?;
    let mut out = Vec::with_capacity(4 + 32 + bytes.len());
    out.extend_from_slice(&len.to_le_bytes());
    if let Some(digest) = digest {
        out.extend_from_slice(digest);
    }
    out.extend_from_slice(bytes);
    stream.write_all(&out).await
}

/// Sends one request (carrying the secret) and reads its answer, both
/// within `ttl`; a timeout is `TimedOut`.
async fn exchange(
    stream: &mut TcpStream,
    secret: &SecretDigest,
    request: &[u8],
    ttl: Duration,
) -> io::Result<Vec<u8>> {
    let both = async {
        write_message(stream, Some(secret), request).await?;
        read_message(stream, None).await
    };
    tokio::time::timeout(ttl, both)
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

/// Serves peers on `listener` until the process ends; forwarded changes
/// go through `local`.
pub async fn serve(
    listener: TcpListener,
    raft: Raft<TypeConfig>,
    secret: SecretDigest,
    local: Arc<LocalHttp>,
) {
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                log::warn!("peer listener: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let raft = raft.clone();
        let local = Arc::clone(&local);
        tokio::spawn(async move {
            if let Err(e) = serve_connection(stream, raft, secret, local).await {
                if e.kind() == io::ErrorKind::PermissionDenied {
                    log::warn!("peer {from}: refused: {e}");
                } else if e.kind() != io::ErrorKind::UnexpectedEof {
                    log::debug!("peer {from}: {e}");
                }
            }
        });
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    raft: Raft<TypeConfig>,
    secret: SecretDigest,
    local: Arc<LocalHttp>,
) -> io::Result<()> {
    loop {
        let mut carried = [0u8; 32];
        let bytes = read_message(&mut stream, Some(&mut carried)).await?;
        if !bool::from(carried.ct_eq(&secret)) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "a message without the cluster's secret",
            ));
        }
        let request: PeerRequest =
            codec::decode(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let response = match request {
            PeerRequest::Append(rpc) => {
                PeerResponse::Append(raft.append_entries(rpc).await.map_err(|e| e.to_string()))
            }
            PeerRequest::Vote(rpc) => {
                PeerResponse::Vote(raft.vote(rpc).await.map_err(|e| e.to_string()))
            }
            PeerRequest::Snapshot(rpc) => {
                PeerResponse::Snapshot(raft.install_snapshot(rpc).await.map_err(|e| e.to_string()))
            }
            PeerRequest::Forward(request) => PeerResponse::Forward(local.answer(request).await),
            PeerRequest::Clock(_) => PeerResponse::Clock(wall_clock_ms()),
        };
        let bytes = codec::encode(&response).map_err(io::Error::other)?;
        write_message(&mut stream, None, &bytes).await?;
    }
}

/// Why a forwarded change got no answer.
#[derive(Debug)]
pub enum ForwardFailed {
    /// It never reached the leader: nothing was changed.
    NotSent(String),
    /// It was sent and no answer came back: it may have been made.
    Lost(String),
}

/// Sends `request` to the leader whose peer listener is `address`, on a
/// connection of its own (openraft's keep theirs), and waits up to `ttl`
/// for the leader's answer.
pub async fn forward(
    address: &str,
    secret: &SecretDigest,
    request: Forwarded,
    ttl: Duration,
) -> Result<ForwardAnswer, ForwardFailed> {
    let bytes = codec::encode(&PeerRequest::Forward(request))
        .map_err(|e| ForwardFailed::NotSent(e.to_string()))?;
    let mut stream = connect(address)
        .await
        .map_err(|e| ForwardFailed::NotSent(e.to_string()))?;
    let answer = exchange(&mut stream, secret, &bytes, ttl)
        .await
        .map_err(|e| ForwardFailed::Lost(e.to_string()))?;
    match codec::decode(&answer) {
        Ok(PeerResponse::Forward(Ok(answer))) => Ok(answer),
        Ok(PeerResponse::Forward(Err(why))) => Err(ForwardFailed::Lost(why)),
        Ok(_) => Err(ForwardFailed::Lost(
            "the leader answered another call".into(),
        )),
        Err(e) => Err(ForwardFailed::Lost(e.to_string())),
    }
}

/// The wall clock, in milliseconds since the epoch (`clock.rs` reads it).
fn wall_clock_ms() -> i64 {
    crate::clock::Clock::system().now().millis()
}

/// One peer's clock, read over `stream` (opened to `address` when it is
/// `None`, and dropped after a failure so the next probe reconnects):
/// this node's wall clock when it asked, the peer's, and the round trip.
pub async fn read_peer_clock(
    stream: &mut Option<TcpStream>,
    address: &str,
    secret: &SecretDigest,
    ttl: Duration,
) -> io::Result<(i64, i64, Duration)> {
    let result = async {
        if stream.is_none() {
            *stream = Some(connect(address).await?);
        }
        let Some(open) = stream.as_mut() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let started = std::time::Instant::now();
        let sent = wall_clock_ms();
        let request = codec::encode(&PeerRequest::Clock(sent)).map_err(io::Error::other)?;
        let answer = exchange(open, secret, &request, ttl).await?;
        let round_trip = started.elapsed();
        match codec::decode(&answer) {
            Ok(PeerResponse::Clock(peer)) => Ok((sent, peer, round_trip)),
            Ok(_) => Err(io::Error::other("the peer answered another call")),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }
    .await;
    if result.is_err() {
        *stream = None;
    }
    result
}

/// A connection to a peer's listener, within [`CONNECT_TIMEOUT`].
async fn connect(address: &str) -> io::Result<TcpStream> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    // A connect to a free loopback port in the ephemeral range can be
    // given that very port as its source and reach itself (TCP
    // simultaneous open): this node would read its own request back. The
    // peer is not listening, so it is down.
    if stream.local_addr().ok() == stream.peer_addr().ok() {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "connected to itself: nothing listens there",
        ));
    }
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Makes a client per peer.
pub struct Network {
    /// Carried by every request.
    pub secret: SecretDigest,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> PeerClient {
        PeerClient {
            target,
            address: node.peer.clone(),
            secret: self.secret,
            stream: None,
        }
    }
}

/// One connection to one peer, opened when first needed and again after
/// any failure.
pub struct PeerClient {
    target: NodeId,
    address: String,
    secret: SecretDigest,
    stream: Option<TcpStream>,
}

/// Why a call failed, before openraft's error types.
enum CallError {
    /// Could not connect: the peer is down.
    Unreachable(io::Error),
    /// Connected, but the exchange failed.
    Network(io::Error),
    /// The peer answered with an error.
    Remote(String),
}

impl CallError {
    fn into_rpc<E: std::error::Error>(self) -> RPCError<NodeId, Member, E> {
        match self {
            Self::Unreachable(e) => RPCError::Unreachable(Unreachable::new(&e)),
            Self::Network(e) => RPCError::Network(NetworkError::new(&e)),
            Self::Remote(why) => RPCError::Network(NetworkError::new(&io::Error::other(why))),
        }
    }
}

impl PeerClient {
    async fn call(
        &mut self,
        request: &PeerRequest,
        ttl: Duration,
    ) -> Result<PeerResponse, CallError> {
        let bytes = codec::encode(request).map_err(|e| CallError::Network(io::Error::other(e)))?;
        if self.stream.is_none() {
            self.stream = Some(
                connect(&self.address)
                    .await
                    .map_err(CallError::Unreachable)?,
            );
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(CallError::Unreachable(io::ErrorKind::NotConnected.into()));
        };
        let answer = match exchange(stream, &self.secret, &bytes, ttl).await {
            Ok(answer) => answer,
            Err(e) => {
                self.stream = None;
                return Err(CallError::Network(e));
            }
        };
        codec::decode(&answer).map_err(|e| {
            self.stream = None;
            CallError::Network(io::Error::new(io::ErrorKind::InvalidData, e))
        })
    }

    fn unexpected(&self) -> CallError {
        CallError::Network(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("node {} answered another call", self.target),
        ))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        match self
            .call(&PeerRequest::Append(rpc), option.hard_ttl())
            .await
        {
            Ok(PeerResponse::Append(Ok(answer))) => Ok(answer),
            Ok(PeerResponse::Append(Err(why))) => Err(CallError::Remote(why).into_rpc()),
            Ok(_) => Err(self.unexpected().into_rpc()),
            Err(e) => Err(e.into_rpc()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Member, RaftError<NodeId, InstallSnapshotError>>,
    > {
        match self
            .call(&PeerRequest::Snapshot(rpc), option.hard_ttl())
            .await
        {
            Ok(PeerResponse::Snapshot(Ok(answer))) => Ok(answer),
            Ok(PeerResponse::Snapshot(Err(why))) => Err(CallError::Remote(why).into_rpc()),
            Ok(_) => Err(self.unexpected().into_rpc()),
            Err(e) => Err(e.into_rpc()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        match self.call(&PeerRequest::Vote(rpc), option.hard_ttl()).await {
            Ok(PeerResponse::Vote(Ok(answer))) => Ok(answer),
            Ok(PeerResponse::Vote(Err(why))) => Err(CallError::Remote(why).into_rpc()),
            Ok(_) => Err(self.unexpected().into_rpc()),
            Err(e) => Err(e.into_rpc()),
        }
    }
}
