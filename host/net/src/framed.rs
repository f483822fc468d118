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
use std::time::Duration;

use bytes::Bytes;
use quinn::{Connection, RecvStream, SendStream, VarInt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasp_proto::codec::{self, MAX_FRAME, PREFIX_LEN};

use crate::NetError;

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
#[derive(Debug)]
pub struct FramedSend {
    stream: SendStream,
}

impl FramedSend {
    /// Wraps a send stream.
    pub fn new(stream: SendStream) -> Self {
        FramedSend { stream }
    }

    /// Encodes and writes one message. Returns once the stream has taken
    /// the bytes (subject to flow control), not when the peer has read them.
    pub async fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), NetError> {
        // One buffer: most frames are small, and those that may carry a
        // big list go through `send_off_thread`, in parts.
        let frame = codec::encode_frame(msg)?;
        self.write_frame(vec![Bytes::from(frame)]).await
    }

    /// [`send`](Self::send) for a message that may carry big lists (a
    /// client's task with an 8 MB argument, a namespace push, an engine's
    /// big result): each list of [`codec::SLICE_AT_LEAST`] or more goes to
    /// the stream as the bytes it is held in, not copied into the frame
    /// first (`codec::encode_frame_parts`). A frame without one costs a
    /// fifth more to encode this way, which is why [`send`](Self::send)
    /// does not.
    pub async fn send_in_parts<T: Serialize>(&mut self, msg: &T) -> Result<(), NetError> {
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
        let (parts, msg) =
            tokio::task::spawn_blocking(move || (codec::encode_frame_parts(&msg), msg))
                .await
                .map_err(|err| NetError::Blocking(err.to_string()))?;
        self.write_frame(parts?).await?;
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
    // A whole frame being decoded off the async thread, kept until its
    // decode is done so that a cancelled `recv` decodes it again.
    ready: Option<Bytes>,
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
            ready: None,
        }
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
        let payload = match self.ready.take() {
            Some(payload) => payload,
            None => match self.recv_frame().await? {
                Some(payload) if payload.len() > OFF_THREAD => Bytes::from(payload),
                // A frame under `OFF_THREAD` may still carry a list worth
                // slicing (`decode_frame`); a smaller one cannot.
                Some(payload) if payload.len() >= codec::SLICE_AT_LEAST => {
                    return Ok(Some(codec::decode_frame(Bytes::from(payload))?));
                }
                Some(payload) => return Ok(Some(codec::decode(&payload)?)),
                None => return Ok(None),
            },
        };
        self.ready = Some(payload.clone());
        let decoded = tokio::task::spawn_blocking(move || codec::decode_frame::<T>(payload))
            .await
            .map_err(|err| NetError::Blocking(err.to_string()));
        self.ready = None;
        Ok(Some(decoded??))
    }

    /// Reads the next frame's payload.
    async fn recv_frame(&mut self) -> Result<Option<Vec<u8>>, NetError> {
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
                let len = codec::frame_len(self.prefix, self.cap).inspect_err(|_| {
                    // Already failing; a stream that is gone needs no stop.
                    let _ = self.stream.stop(FRAME_TOO_LARGE);
                })?;
                self.len = Some(len);
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
        Ok(Some(std::mem::take(&mut self.payload)))
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
