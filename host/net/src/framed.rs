//! Messages over QUIC streams: [`FramedSend`] writes one
//! [`wasp_proto::codec`] frame per message, [`FramedRecv`] reads them
//! back, checking each frame's length against a cap before keeping any of
//! it.
//!
//! A receiver's memory for one frame grows with the bytes that actually
//! arrive, up to the frame's declared length, which is at most the cap: a
//! peer that announces a 300 MiB frame and sends 10 bytes costs 10 bytes.
//!
//! Frames over [`OFF_THREAD`] are decoded (and, with
//! [`FramedSend::send_off_thread`], encoded) on tokio's blocking pool: a
//! 200 MB module takes a tenth of a second to copy, and on the async
//! thread that is a tenth of a second in which no other connection moves.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quinn::{Connection, RecvStream, SendStream, VarInt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasp_proto::codec::{self, BlobSink, MAX_FRAME, PREFIX_LEN};

use crate::NetError;
use crate::same_host::{MAX_BLOBS, Outgoing, SameHost, map_blob};

/// How long a blob frame waits for its memory files on the same-host
/// channel. The sender passes them before it writes the frame, so they
/// are there when it arrives unless the peer is broken or hostile.
const BLOBS_DEADLINE: Duration = Duration::from_secs(10);

/// Frames larger than this are encoded and decoded off the async thread.
pub const OFF_THREAD: usize = 1 << 20;

/// A frame this large is timed as it arrives, from its prefix to its last
/// byte, and the time logged at debug level under the target [`HOP_LOG`]:
/// how long one hop of a big value took on the wire (`bench/`'s
/// `bigvalues` reads it from the cluster's logs).
pub const HOP_TIMED_AT_LEAST: usize = 1 << 20;

/// The tracing target of [`HOP_TIMED_AT_LEAST`]'s events: enable it with
/// `RUST_LOG=wasp_net::hop=debug`.
pub const HOP_LOG: &str = "wasp_net::hop";

/// The stream error code sent to a peer whose frame broke the cap.
const FRAME_TOO_LARGE: VarInt = VarInt::from_u32(1);

/// Writes messages to a QUIC send stream, one frame each.
///
/// With a same-host channel attached ([`attach_same_host`](Self::attach_same_host)),
/// every frame is a blob frame: its big byte strings go beside it as
/// sealed memory files (see [`same_host`](crate::same_host)).
#[derive(Debug)]
pub struct FramedSend {
    stream: SendStream,
    same_host: Option<Arc<SameHost>>,
    // Blob frames sent with memory files: numbers them for the receiver.
    blob_frames: u64,
}

impl FramedSend {
    /// Wraps a send stream.
    pub fn new(stream: SendStream) -> Self {
        FramedSend {
            stream,
            same_host: None,
            blob_frames: 0,
        }
    }

    /// Sends every later frame as a blob frame, its big byte strings
    /// through `channel`. The peer's [`FramedRecv`] must have the other
    /// end attached from the same frame on.
    pub fn attach_same_host(&mut self, channel: Arc<SameHost>) {
        self.same_host = Some(channel);
    }

    /// Encodes and writes one message. Returns once the stream has taken
    /// the bytes (subject to flow control), not when the peer has read them.
    pub async fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), NetError> {
        if self.same_host.is_some() {
            let (parts, outgoing) = codec::encode_blob_frame(msg, Outgoing::default(), false)?;
            return self.write_blob_frame(parts, outgoing).await;
        }
        // One buffer: most frames are small, and those that may carry a
        // big list go through `send_off_thread`, in parts.
        let frame = codec::encode_frame(msg)?;
        self.write_frame(vec![Bytes::from(frame)]).await
    }

    /// Passes a blob frame's memory files over the same-host channel, then
    /// writes the frame that names them.
    async fn write_blob_frame(
        &mut self,
        parts: Vec<Bytes>,
        outgoing: Outgoing,
    ) -> Result<(), NetError> {
        if let Some(channel) = &self.same_host
            && outgoing.count() > 0
        {
            channel
                .send_blobs(self.blob_frames, &outgoing.fds())
                .await
                .map_err(|source| NetError::SameHost {
                    what: "passing memory files",
                    source,
                })?;
            self.blob_frames += 1;
        }
        // The files are the receiver's now (passing them duplicated them).
        drop(outgoing);
        self.write_frame(parts).await
    }

    /// [`send`](Self::send) for a message that may carry big lists (a
    /// client's task with an 8 MB argument, a namespace push, an engine's
    /// big result): each list of [`codec::SLICE_AT_LEAST`] or more goes to
    /// the stream as the bytes it is held in, not copied into the frame
    /// first (`codec::encode_frame_parts`). A frame without one costs a
    /// fifth more to encode this way, which is why [`send`](Self::send)
    /// does not.
    pub async fn send_in_parts<T: Serialize>(&mut self, msg: &T) -> Result<(), NetError> {
        if self.same_host.is_some() {
            let (parts, outgoing) = codec::encode_blob_frame(msg, Outgoing::default(), true)?;
            return self.write_blob_frame(parts, outgoing).await;
        }
        let parts = codec::encode_frame_parts(msg)?;
        self.write_frame(parts).await
    }

    /// Hands the encoded frame to the stream in its parts, each whole:
    /// quinn keeps the buffers themselves until the peer acknowledges
    /// them, where `write_all` of a slice would copy them first, and a big
    /// list's bytes are a part of their own, shared with the message
    /// (`codec::encode_frame_parts`): a value is not copied again on each
    /// hop, nor for each engine it goes to.
    async fn write_frame(&mut self, mut parts: Vec<Bytes>) -> Result<(), NetError> {
        self.stream
            .write_all_chunks(&mut parts)
            .await
            .map_err(NetError::write)
    }

    /// Encodes `msg` on the blocking pool, then writes it; gives the
    /// message back. For messages that may be large (over [`OFF_THREAD`]),
    /// whose encoding would otherwise hold up the async thread.
    pub async fn send_off_thread<T: Serialize + Send + 'static>(
        &mut self,
        msg: T,
    ) -> Result<T, NetError> {
        let blob_frame = self.same_host.is_some();
        let (encoded, msg) = tokio::task::spawn_blocking(move || {
            let encoded = if blob_frame {
                codec::encode_blob_frame(&msg, Outgoing::default(), true)
            } else {
                codec::encode_frame_parts(&msg).map(|parts| (parts, Outgoing::default()))
            };
            (encoded, msg)
        })
        .await
        .map_err(|err| NetError::Blocking(err.to_string()))?;
        let (parts, outgoing) = encoded?;
        self.write_blob_frame(parts, outgoing).await?;
        Ok(msg)
    }

    /// Ends the stream cleanly: the peer's [`FramedRecv::recv`] returns
    /// `Ok(None)` after the last message.
    pub fn finish(&mut self) -> Result<(), NetError> {
        self.stream.finish().map_err(|_| NetError::StreamClosed)
    }

    /// The underlying stream.
    pub fn into_inner(self) -> SendStream {
        self.stream
    }
}

/// Reads messages from a QUIC receive stream, one frame each.
#[derive(Debug)]
pub struct FramedRecv {
    stream: RecvStream,
    cap: usize,
    // The frame being read, kept here so that `recv` is cancel-safe.
    prefix: [u8; PREFIX_LEN],
    prefix_read: usize,
    len: Option<usize>,
    payload: Vec<u8>,
    // When a frame of `HOP_TIMED_AT_LEAST` or more began to arrive.
    arriving_since: Option<std::time::Instant>,
    // Whether the frame being read is a blob frame.
    blob_frame: bool,
    // A blob frame read whole, waiting for its memory files: its message
    // and how many files it names (kept so that `recv` is cancel-safe).
    awaiting_blobs: Option<(Bytes, u32)>,
    // A whole frame being decoded off the async thread, kept until its
    // decode is done so that a cancelled `recv` decodes it again: its
    // message, and a blob frame's mapped files.
    ready: Option<(Bytes, Option<Vec<Bytes>>)>,
    same_host: Option<Arc<SameHost>>,
    // Blob frames received with memory files: their numbers must follow.
    blob_frames: u64,
}

impl FramedRecv {
    /// Wraps a receive stream, accepting frames up to [`MAX_FRAME`].
    pub fn new(stream: RecvStream) -> Self {
        FramedRecv::with_cap(stream, MAX_FRAME)
    }

    /// Wraps a receive stream, accepting frames up to `cap` bytes: a peer
    /// that should only send small messages gets a small cap.
    pub fn with_cap(stream: RecvStream, cap: usize) -> Self {
        FramedRecv {
            stream,
            cap,
            prefix: [0; PREFIX_LEN],
            prefix_read: 0,
            len: None,
            payload: Vec::new(),
            arriving_since: None,
            blob_frame: false,
            awaiting_blobs: None,
            ready: None,
            same_host: None,
            blob_frames: 0,
        }
    }

    /// Reads blob frames (see [`FramedSend::attach_same_host`]), their
    /// memory files from `channel`. Frames that are not blob frames are
    /// still read as before.
    pub fn attach_same_host(&mut self, channel: Arc<SameHost>) {
        self.same_host = Some(channel);
    }

    /// The frame cap.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Reads and decodes the next message, or `Ok(None)` if the peer
    /// finished the stream between messages.
    ///
    /// Cancel-safe: if the future is dropped mid-frame, the next call
    /// resumes the same frame. After an error, the stream is unusable; a
    /// frame over the cap also stops the stream, so the peer stops sending.
    ///
    /// A frame over [`OFF_THREAD`] bytes is decoded on the blocking pool.
    pub async fn recv<T: DeserializeOwned + Send + 'static>(
        &mut self,
    ) -> Result<Option<T>, NetError> {
        let (message, blobs) = match self.ready.take() {
            Some(ready) => ready,
            None => {
                let (message, blob_count) = match self.awaiting_blobs.take() {
                    Some((message, count)) => (message, Some(count)),
                    None => match self.recv_frame().await? {
                        Some((payload, true)) => {
                            let (count, message) = codec::blob_count(&Bytes::from(payload))?;
                            (message, Some(count))
                        }
                        Some((payload, false)) if payload.len() > OFF_THREAD => {
                            (Bytes::from(payload), None)
                        }
                        // A frame under `OFF_THREAD` may still carry a list
                        // worth slicing (`decode_frame`); a smaller one
                        // cannot.
                        Some((payload, false)) if payload.len() >= codec::SLICE_AT_LEAST => {
                            return Ok(Some(codec::decode_frame(Bytes::from(payload))?));
                        }
                        Some((payload, false)) => return Ok(Some(codec::decode(&payload)?)),
                        None => return Ok(None),
                    },
                };
                if let Some(count) = blob_count {
                    self.awaiting_blobs = Some((message.clone(), count));
                    let blobs = self.recv_blobs(count).await?;
                    self.awaiting_blobs = None;
                    // A blob is not read to decode the frame (a list in
                    // one becomes a slice of it): only the bytes inline
                    // cost decoding time.
                    if message.len() <= OFF_THREAD {
                        return Ok(Some(codec::decode_blob_frame(message, blobs)?));
                    }
                    (message, Some(blobs))
                } else {
                    (message, None)
                }
            }
        };
        self.ready = Some((message.clone(), blobs.clone()));
        let decoded = tokio::task::spawn_blocking(move || match blobs {
            Some(blobs) => codec::decode_blob_frame::<T>(message, blobs),
            None => codec::decode_frame::<T>(message),
        })
        .await
        .map_err(|err| NetError::Blocking(err.to_string()));
        self.ready = None;
        Ok(Some(decoded??))
    }

    /// The `count` memory files of the blob frame just read, mapped: none
    /// without waiting when it names none. Each is checked (sealed, and
    /// all of them within the frame cap), and they must come numbered as
    /// the next blob frame.
    async fn recv_blobs(&mut self, count: u32) -> Result<Vec<Bytes>, NetError> {
        let refused = |reason: String| NetError::SameHost {
            what: "reading a blob frame",
            source: std::io::Error::other(reason),
        };
        let Some(channel) = self.same_host.clone() else {
            return Err(refused(
                "the peer sent a frame that names memory files, but this connection has \
                 no same-host channel"
                    .into(),
            ));
        };
        if count == 0 {
            return Ok(Vec::new());
        }
        if count as usize > MAX_BLOBS {
            return Err(refused(format!(
                "a frame names {count} memory files, over the most a frame may \
                 (MAX_BLOBS = {MAX_BLOBS})"
            )));
        }
        let (seq, fds) = with_deadline(BLOBS_DEADLINE, "a blob frame's memory files", async {
            channel
                .recv_blobs()
                .await
                .map_err(|source| NetError::SameHost {
                    what: "receiving memory files",
                    source,
                })
        })
        .await?;
        if seq != self.blob_frames || fds.len() != count as usize {
            return Err(refused(format!(
                "blob frame {} names {count} memory files, but the channel passed \
                 {} for blob frame {seq}",
                self.blob_frames,
                fds.len()
            )));
        }
        self.blob_frames += 1;
        crate::same_host::count_received(fds.len());
        let mut room = self.cap;
        let mut blobs = Vec::with_capacity(fds.len());
        for fd in fds {
            let blob = map_blob(fd, room).map_err(|source| NetError::SameHost {
                what: "mapping a memory file",
                source,
            })?;
            room -= blob.len();
            blobs.push(blob);
        }
        Ok(blobs)
    }

    /// Reads the next frame's payload, and whether it is a blob frame.
    async fn recv_frame(&mut self) -> Result<Option<(Vec<u8>, bool)>, NetError> {
        while self.prefix_read < PREFIX_LEN {
            let chunk = self
                .stream
                .read_chunk(PREFIX_LEN - self.prefix_read, true)
                .await
                .map_err(NetError::read)?;
            let Some(chunk) = chunk else {
                if self.prefix_read == 0 {
                    return Ok(None);
                }
                return Err(NetError::Truncated {
                    part: "prefix",
                    expected: PREFIX_LEN,
                    got: self.prefix_read,
                });
            };
            let end = self.prefix_read + chunk.bytes.len();
            self.prefix[self.prefix_read..end].copy_from_slice(&chunk.bytes);
            self.prefix_read = end;
        }

        let len = match self.len {
            Some(len) => len,
            None => {
                let (len, blob_frame) =
                    codec::frame_head(self.prefix, self.cap).inspect_err(|_| {
                        // Already failing; a stream that is gone needs no stop.
                        let _ = self.stream.stop(FRAME_TOO_LARGE);
                    })?;
                self.len = Some(len);
                self.blob_frame = blob_frame;
                if len >= HOP_TIMED_AT_LEAST {
                    self.arriving_since = Some(std::time::Instant::now());
                }
                len
            }
        };

        while self.payload.len() < len {
            let chunk = self
                .stream
                .read_chunk(len - self.payload.len(), true)
                .await
                .map_err(NetError::read)?;
            let Some(chunk) = chunk else {
                return Err(NetError::Truncated {
                    part: "payload",
                    expected: len,
                    got: self.payload.len(),
                });
            };
            reserve_up_to(&mut self.payload, chunk.bytes.len(), len);
            self.payload.extend_from_slice(&chunk.bytes);
        }

        self.prefix_read = 0;
        self.len = None;
        if let Some(since) = self.arriving_since.take() {
            tracing::debug!(
                target: HOP_LOG,
                bytes = len,
                ms = since.elapsed().as_secs_f64() * 1e3,
                "read a large frame"
            );
        }
        Ok(Some((std::mem::take(&mut self.payload), self.blob_frame)))
    }

    /// The underlying stream.
    pub fn into_inner(self) -> RecvStream {
        self.stream
    }
}

/// Makes room for `more` bytes, doubling the capacity as a `Vec` would but
/// never past the frame's length `len`, so the buffer follows the bytes that
/// arrived rather than the length the peer announced.
fn reserve_up_to(buf: &mut Vec<u8>, more: usize, len: usize) {
    if buf.capacity() - buf.len() >= more {
        return;
    }
    let target = (buf.capacity() * 2)
        .max(buf.len() + more)
        .max(64 * 1024)
        .min(len);
    buf.reserve_exact(target - buf.len());
}

/// Opens a bidirectional stream on `connection`. The peer's
/// [`accept_bi`] returns only once something has been sent on it.
pub async fn open_bi(connection: &Connection) -> Result<(FramedSend, FramedRecv), NetError> {
    let (send, recv) = connection.open_bi().await.map_err(NetError::connection)?;
    Ok((FramedSend::new(send), FramedRecv::new(recv)))
}

/// Accepts the next bidirectional stream the peer opens on `connection`.
/// When the peer has closed the connection, fails with its reason
/// ([`NetError::Closed`]).
pub async fn accept_bi(connection: &Connection) -> Result<(FramedSend, FramedRecv), NetError> {
    let (send, recv) = connection.accept_bi().await.map_err(NetError::connection)?;
    Ok((FramedSend::new(send), FramedRecv::new(recv)))
}

/// Runs `work`, failing with [`NetError::Timeout`] naming `what` if it has
/// not finished after `after`: for steps a peer could stall, such as
/// presenting its token after the handshake.
pub async fn with_deadline<T>(
    after: Duration,
    what: &'static str,
    work: impl Future<Output = Result<T, NetError>>,
) -> Result<T, NetError> {
    tokio::time::timeout(after, work)
        .await
        .unwrap_or(Err(NetError::Timeout { what, after }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{client_endpoint, connect};
    use crate::testing::server;
    use serde::Deserialize;
    use wasp_proto::codec::CodecError;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Msg {
        Submit { id: u64, module: Vec<u8> },
        Result { id: u64, output: String },
        Bye,
    }

    /// A connected pair, with both endpoints to keep alive.
    struct Pair {
        _endpoints: (quinn::Endpoint, quinn::Endpoint),
        client: Connection,
        server: Connection,
    }

    async fn pair() -> Pair {
        let (endpoint, cert) = server();
        let addr = endpoint.local_addr().expect("bound");
        let client = client_endpoint().expect("binds");
        let (client_conn, server_conn) = tokio::join!(
            async {
                connect(&client, addr, &cert.fingerprint())
                    .await
                    .expect("connects")
            },
            async {
                let incoming = endpoint.accept().await.expect("incoming");
                incoming.await.expect("handshake")
            }
        );
        Pair {
            _endpoints: (client, endpoint),
            client: client_conn,
            server: server_conn,
        }
    }

    #[tokio::test]
    async fn messages_flow_both_ways_including_a_large_frame() {
        let Pair {
            _endpoints,
            client: client_conn,
            server: server_conn,
        } = pair().await;
        let big: Vec<u8> = (0..20_000_000u32).map(|i| (i % 251) as u8).collect();

        let sent = big.clone();
        let server = tokio::spawn(async move {
            let (mut send, mut recv) = accept_bi(&server_conn).await.expect("accepts");
            let mut got = Vec::new();
            while let Some(msg) = recv.recv::<Msg>().await.expect("reads") {
                got.push(msg);
            }
            assert_eq!(
                got,
                [
                    Msg::Submit {
                        id: 1,
                        module: b"\0asm".to_vec()
                    },
                    Msg::Submit {
                        id: 2,
                        module: sent.clone()
                    },
                    Msg::Bye,
                ]
            );
            send.send(&Msg::Result {
                id: 2,
                output: "ok".into(),
            })
            .await
            .expect("writes");
            send.send(&Msg::Submit {
                id: 3,
                module: sent,
            })
            .await
            .expect("writes");
            send.finish().expect("finishes");
            // Hold the connection until the client has read everything.
            server_conn.closed().await;
        });

        let (mut send, mut recv) = open_bi(&client_conn).await.expect("opens");
        send.send(&Msg::Submit {
            id: 1,
            module: b"\0asm".to_vec(),
        })
        .await
        .expect("writes");
        send.send(&Msg::Submit {
            id: 2,
            module: big.clone(),
        })
        .await
        .expect("writes");
        send.send(&Msg::Bye).await.expect("writes");
        send.finish().expect("finishes");

        assert_eq!(
            recv.recv::<Msg>().await.expect("reads"),
            Some(Msg::Result {
                id: 2,
                output: "ok".into()
            })
        );
        assert_eq!(
            recv.recv::<Msg>().await.expect("reads"),
            Some(Msg::Submit { id: 3, module: big })
        );
        assert_eq!(recv.recv::<Msg>().await.expect("reads"), None);
        client_conn.close(VarInt::from_u32(0), b"done");
        server.await.expect("server side");
    }

    /// Messages sent in parts, with a big list (800 kB) and without, arrive
    /// as sent.
    #[tokio::test]
    async fn a_message_sent_in_parts_arrives_whole() {
        use wasp_proto::Value;
        use wasp_proto::msg::{FromEngine, TaskMeta, TaskResult, Values};
        let Pair {
            _endpoints,
            client: client_conn,
            server: server_conn,
        } = pair().await;
        let result = |seq, n: usize| {
            FromEngine::Done(TaskResult {
                id: wasp_proto::TaskId::new(1, seq),
                outcome: Ok(Values::encode(&[Some(Value::from(vec![0.5f64; n]))]).expect("encodes")),
                meta: TaskMeta::default(),
            })
        };
        let sent = vec![result(1, 100_000), result(2, 3)];
        let expected = sent.clone();
        let server = tokio::spawn(async move {
            let (_send, mut recv) = accept_bi(&server_conn).await.expect("accepts");
            let got = recv.recv::<Vec<FromEngine>>().await.expect("reads");
            assert_eq!(got, Some(expected));
            let small = recv.recv::<Vec<FromEngine>>().await.expect("reads");
            assert_eq!(small.map(|m| m.len()), Some(1));
        });
        let (mut send, _recv) = open_bi(&client_conn).await.expect("opens");
        send.send_in_parts(&sent).await.expect("sends");
        send.send_in_parts(&vec![result(3, 1)])
            .await
            .expect("sends");
        send.finish().expect("finishes");
        server.await.expect("server side");
        client_conn.close(VarInt::from_u32(0), b"done");
    }

    /// A same-host channel bound as the controller binds one: the
    /// listener's task, and the two ends (the peer's, the controller's).
    async fn bound_channel(tag: &str) -> (tokio::task::JoinHandle<()>, SameHost, Arc<SameHost>) {
        use crate::same_host::SameHostListener;
        let name = format!("wasp-test-{tag}-{}", std::process::id());
        let listener = SameHostListener::bind(name).expect("binds");
        let serving = tokio::spawn(listener.clone().serve());
        let (peer, ticket) = SameHost::connect(listener.name()).await.expect("connects");
        let controller = listener.take(&ticket).expect("the ticket is good");
        (serving, peer, controller)
    }

    /// A sink that says every byte string is blob 0 at offset 0, whatever
    /// is (or is not) passed: for frames that lie about their files.
    struct BlobZero;

    impl BlobSink for BlobZero {
        fn put(&mut self, _: &[u8]) -> Option<wasp_proto::codec::BlobPlace> {
            Some(wasp_proto::codec::BlobPlace { blob: 0, offset: 0 })
        }

        fn count(&self) -> u32 {
            1
        }
    }

    /// Over a same-host channel a big list is a memory file: the receiver
    /// holds a mapping of it, and forwarding it passes the same file on
    /// (the controller's hop to an engine); a small one stays inline.
    #[tokio::test]
    async fn big_lists_cross_a_same_host_channel_as_memory_files_forwarded_as_they_came() {
        use wasp_proto::Value;
        use wasp_proto::codec::BLOB_AT_LEAST;
        use wasp_proto::msg::Values;

        use crate::same_host::inode_of;
        let Pair {
            _endpoints,
            client: client_conn,
            server: server_conn,
        } = pair().await;
        let (serving, client_side, server_side) = bound_channel("framed").await;
        let big = Values::encode(&[Some(Value::from(vec![1.25f64; BLOB_AT_LEAST / 8 + 3]))])
            .expect("encodes");
        let small = Values::encode(&[Some(Value::from(vec![3u8; 10]))]).expect("encodes");
        let sent = vec![big.clone(), small.clone()];
        let expected = sent.clone();
        let server = tokio::spawn(async move {
            let (mut send, mut recv) = accept_bi(&server_conn).await.expect("accepts");
            send.attach_same_host(server_side.clone());
            recv.attach_same_host(server_side);
            let got = recv
                .recv::<Vec<Values>>()
                .await
                .expect("reads")
                .expect("one");
            assert_eq!(got, expected);
            let inode = inode_of(got[0].as_bytes()).expect("the big list is a mapping");
            assert!(
                inode_of(got[1].as_bytes()).is_none(),
                "the small one a copy"
            );
            // Back the way it came, twice: blocking-pool encoding too.
            send.send(&got).await.expect("forwards");
            let got = send.send_off_thread(got).await.expect("forwards");
            // Kept open until the client has read both.
            (inode, got, send, server_conn)
        });
        let (mut send, mut recv) = open_bi(&client_conn).await.expect("opens");
        let client_side = Arc::new(client_side);
        send.attach_same_host(client_side.clone());
        recv.attach_same_host(client_side);
        send.send_in_parts(&sent).await.expect("sends");
        let (inode, _, _send, _conn) = server.await.expect("server side");
        for _ in 0..2 {
            let back = recv
                .recv::<Vec<Values>>()
                .await
                .expect("reads")
                .expect("one");
            assert_eq!(back, sent);
            assert_eq!(
                inode_of(back[0].as_bytes()),
                Some(inode),
                "forwarded as the same memory file"
            );
        }
        serving.abort();
        client_conn.close(VarInt::from_u32(0), b"done");
    }

    /// A peer that passes a memory file it could still change (not sealed)
    /// fails its stream, naming why, before anything is decoded from it.
    #[tokio::test]
    async fn a_memory_file_not_sealed_fails_the_stream() {
        use std::io::Write;
        use std::os::fd::{AsFd, OwnedFd};

        use wasp_proto::Value;
        use wasp_proto::codec::BLOB_AT_LEAST;
        use wasp_proto::msg::Values;

        let Pair {
            _endpoints,
            client: client_conn,
            server: server_conn,
        } = pair().await;
        let (serving, client_side, server_side) = bound_channel("unsealed").await;
        let big = Values::encode(&[Some(Value::from(vec![5u8; BLOB_AT_LEAST]))]).expect("encodes");
        let (parts, _) = codec::encode_blob_frame(&vec![big], BlobZero, false).expect("frames");
        let server = tokio::spawn(async move {
            let (_send, mut recv) = accept_bi(&server_conn).await.expect("accepts");
            recv.attach_same_host(server_side);
            recv.recv::<Vec<Values>>()
                .await
                .expect_err("refused")
                .to_string()
        });
        let unsealed =
            rustix::fs::memfd_create("wasp-blob", rustix::fs::MemfdFlags::CLOEXEC).expect("memfd");
        let mut file = std::fs::File::from(unsealed);
        file.write_all(&vec![5u8; BLOB_AT_LEAST + 16])
            .expect("writes");
        let unsealed = OwnedFd::from(file);
        client_side
            .send_blobs(0, &[unsealed.as_fd()])
            .await
            .expect("passes");
        let (mut send, _recv) = open_bi(&client_conn).await.expect("opens");
        send.write_frame(parts).await.expect("sends");
        let err = server.await.expect("server side");
        assert!(
            err.contains("mapping a memory file") && err.contains("not sealed against writing"),
            "{err}"
        );
        serving.abort();
        client_conn.close(VarInt::from_u32(0), b"done");
    }

    /// A blob frame on a connection without a same-host channel, or whose
    /// files never come, fails the stream with the reason; nothing is
    /// decoded from it.
    #[tokio::test]
    async fn a_blob_frame_without_its_files_is_refused() {
        use wasp_proto::Value;
        use wasp_proto::codec::BLOB_AT_LEAST;
        use wasp_proto::msg::Values;

        let Pair {
            _endpoints,
            client: client_conn,
            server: server_conn,
        } = pair().await;
        let big = Values::encode(&[Some(Value::from(vec![9u8; BLOB_AT_LEAST]))]).expect("encodes");
        // Names a blob it never passes.
        let (parts, _) = codec::encode_blob_frame(&vec![big], BlobZero, false).expect("frames");
        let server = tokio::spawn(async move {
            let (_send, mut recv) = accept_bi(&server_conn).await.expect("accepts");
            recv.recv::<Vec<Values>>()
                .await
                .expect_err("refused")
                .to_string()
        });
        let (mut send, _recv) = open_bi(&client_conn).await.expect("opens");
        send.write_frame(parts).await.expect("sends");
        let err = server.await.expect("server side");
        assert!(err.contains("no same-host channel"), "{err}");
        client_conn.close(VarInt::from_u32(0), b"done");
    }

    #[tokio::test]
    async fn a_length_over_the_cap_is_refused_before_the_payload() {
        let Pair {
            _endpoints,
            client: client_conn,
            server: server_conn,
        } = pair().await;
        let (mut raw, _unused) = client_conn.open_bi().await.expect("opens");
        // Announce a frame just over a 1 MiB cap and send none of it: the
        // receiver must fail on the prefix alone, not wait for the payload.
        let cap = 1024 * 1024;
        let len = u32::try_from(cap + 1).expect("fits");
        raw.write_all(&len.to_le_bytes()).await.expect("writes");

        let (_send, recv) = accept_bi(&server_conn).await.expect("accepts");
        let mut recv = FramedRecv::with_cap(recv.into_inner(), cap);
        // The payload never comes: a receiver that waited for it would end
        // with the deadline's error, not the cap's.
        let err = with_deadline(Duration::from_secs(5), "oversize frame", recv.recv::<Msg>())
            .await
            .expect_err("over the cap");
        assert!(
            matches!(err, NetError::Codec(CodecError::FrameTooLarge { len: l, cap: c }) if l == cap + 1 && c == cap),
            "{err:?}"
        );
        assert!(err.to_string().contains("exceeds the cap"), "{err}");
        // Nothing was kept for the payload.
        assert_eq!(recv.payload.capacity(), 0);

        // The default cap refuses a 4 GiB announcement the same way.
        let (mut raw, _unused) = client_conn.open_bi().await.expect("opens");
        raw.write_all(&[0xff; 4]).await.expect("writes");
        let (_send, mut recv) = accept_bi(&server_conn).await.expect("accepts");
        let err = recv.recv::<Msg>().await.expect_err("over the cap");
        assert!(
            matches!(err, NetError::Codec(CodecError::FrameTooLarge { .. })),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn truncated_frame_and_peer_close_are_reported() {
        let Pair {
            _endpoints,
            client: client_conn,
            server: server_conn,
        } = pair().await;
        let (mut raw, _unused) = client_conn.open_bi().await.expect("opens");
        raw.write_all(&100u32.to_le_bytes()).await.expect("writes");
        raw.write_all(b"only ten!!").await.expect("writes");
        raw.finish().expect("finishes");
        let (_send, mut recv) = accept_bi(&server_conn).await.expect("accepts");
        let err = recv.recv::<Msg>().await.expect_err("truncated");
        assert!(
            matches!(
                err,
                NetError::Truncated {
                    part: "payload",
                    expected: 100,
                    got: 10
                }
            ),
            "{err:?}"
        );

        client_conn.close(VarInt::from_u32(7), b"shutting down");
        let err = accept_bi(&server_conn).await.expect_err("closed");
        assert!(matches!(err, NetError::Closed { code: 7, .. }), "{err:?}");
        assert!(err.to_string().contains("shutting down"), "{err}");
    }

    #[tokio::test]
    async fn with_deadline_times_out() {
        let err = with_deadline(
            Duration::from_millis(10),
            "token",
            std::future::pending::<Result<(), NetError>>(),
        )
        .await
        .expect_err("times out");
        assert!(err.to_string().starts_with("token timed out"), "{err}");
    }
}
