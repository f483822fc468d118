//! A lossy UDP relay, for tests of wasp over a bad network where the
//! kernel has no `netem` qdisc: it forwards datagrams between peers and
//! one target address, each way, dropping some, delaying each by a
//! jittered amount (so that datagrams overtake each other), and dropping
//! everything while partitioned.
//!
//! It works as a NAT does: every peer address that sends to the relay gets
//! its own upstream socket, so the target sees one distinct address per
//! peer and its answers find their way back to the right peer. A peer that
//! reconnects from a new port is a new peer.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What the link does to each datagram, each way.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Link {
    /// The fraction of datagrams dropped, 0 to 1.
    pub loss: f64,
    /// The least delay of a datagram.
    pub delay: Duration,
    /// A delay drawn uniformly from zero to this is added to `delay`:
    /// datagrams sent closer together than this may arrive out of order.
    /// Without jitter they leave in the order they came, however long
    /// the delay: QUIC takes a datagram overtaken by three others as lost,
    /// so reordering the link did not ask for would look like loss.
    pub jitter: Duration,
}

impl Link {
    /// A link that forwards everything at once.
    pub const CLEAN: Link = Link {
        loss: 0.0,
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
    };
}

/// Counts of datagrams, both ways together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Forwarded (after their delay).
    pub forwarded: u64,
    /// Bytes of the datagrams forwarded.
    pub bytes: u64,
    /// Dropped by the link's loss.
    pub lost: u64,
    /// Dropped during a partition.
    pub partitioned: u64,
    /// Distinct peer addresses seen.
    pub peers: u64,
}

#[derive(Default)]
struct Counters {
    forwarded: AtomicU64,
    bytes: AtomicU64,
    lost: AtomicU64,
    partitioned: AtomicU64,
    peers: AtomicU64,
}

struct Shared {
    link: Mutex<Link>,
    partition: AtomicBool,
    counters: Counters,
}

impl Shared {
    fn counted(&self, bytes: usize) {
        self.counters.forwarded.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// The fate of one datagram: `None` if dropped, else its delay.
    fn fate(&self, rng: &mut Rng) -> Option<Duration> {
        if self.partition.load(Ordering::Relaxed) {
            self.counters.partitioned.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let link = *self
            .link
            .lock()
            .expect("the link settings are never poisoned");
        if rng.unit() < link.loss {
            self.counters.lost.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(link.delay + link.jitter.mul_f64(rng.unit()))
    }
}

/// A running relay; stops (its tasks aborted) on drop.
pub struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    /// Listens on `listen` (port 0: any) and forwards to `target`, from
    /// upstream sockets bound to `upstream_ip`, through `link`.
    pub async fn start(
        listen: SocketAddr,
        upstream_ip: IpAddr,
        target: SocketAddr,
        link: Link,
        seed: u64,
    ) -> std::io::Result<Relay> {
        let downstream = Arc::new(UdpSocket::bind(listen).await?);
        let addr = downstream.local_addr()?;
        let shared = Arc::new(Shared {
            link: Mutex::new(link),
            partition: AtomicBool::new(false),
            counters: Counters::default(),
        });
        let tasks = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::unbounded_channel();
        let outbox = Outbox {
            tx,
            seq: Arc::new(AtomicU64::new(0)),
        };
        let sender = tokio::spawn(send_when_due(rx, Arc::clone(&shared)));
        let main = tokio::spawn(forward_down(
            downstream,
            upstream_ip,
            target,
            Arc::clone(&shared),
            Arc::clone(&tasks),
            outbox,
            seed,
        ));
        tasks.lock().expect("not poisoned").extend([sender, main]);
        Ok(Relay {
            addr,
            shared,
            tasks,
        })
    }

    /// Where peers send to reach the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes what the link does to datagrams from now on.
    pub fn set_link(&self, link: Link) {
        *self.shared.link.lock().expect("not poisoned") = link;
    }

    /// Drops every datagram, both ways, until [`Relay::heal`].
    pub fn partition(&self) {
        self.shared.partition.store(true, Ordering::Relaxed);
    }

    /// Ends a partition.
    pub fn heal(&self) {
        self.shared.partition.store(false, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        Stats {
            forwarded: c.forwarded.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            lost: c.lost.load(Ordering::Relaxed),
            partitioned: c.partitioned.load(Ordering::Relaxed),
            peers: c.peers.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        for task in self.tasks.lock().expect("not poisoned").drain(..) {
            task.abort();
        }
    }
}

/// Largest datagram: more than any MTU the test's links have.
const MAX_DATAGRAM: usize = 65_536;

/// A datagram waiting out its delay.
struct Delayed {
    due: Instant,
    /// Arrival order: datagrams due at the same time leave in it, so
    /// that only jitter reorders (tasks woken by one timer tick would
    /// run in any order).
    seq: u64,
    datagram: Vec<u8>,
    via: Arc<UdpSocket>,
    /// Where to send it; `None`: the socket's connected peer.
    to: Option<SocketAddr>,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl Eq for Delayed {}

impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Delayed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// Queues a datagram that survived its fate, to leave after `delay`.
#[derive(Clone)]
struct Outbox {
    tx: mpsc::UnboundedSender<Delayed>,
    seq: Arc<AtomicU64>,
}

impl Outbox {
    fn push(&self, delay: Duration, datagram: &[u8], via: &Arc<UdpSocket>, to: Option<SocketAddr>) {
        let _ = self.tx.send(Delayed {
            due: Instant::now() + delay,
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            datagram: datagram.to_vec(),
            via: Arc::clone(via),
            to,
        });
    }
}

/// Sends each queued datagram when it is due, earliest first.
async fn send_when_due(mut rx: mpsc::UnboundedReceiver<Delayed>, shared: Arc<Shared>) {
    let mut waiting: BinaryHeap<Reverse<Delayed>> = BinaryHeap::new();
    loop {
        let next_due = waiting.peek().map(|Reverse(d)| d.due);
        tokio::select! {
            queued = rx.recv() => match queued {
                Some(delayed) => waiting.push(Reverse(delayed)),
                None => return,
            },
            _ = sleep_until(next_due) => {
                let now = Instant::now();
                while let Some(Reverse(first)) = waiting.peek() {
                    if first.due > now {
                        break;
                    }
                    let Reverse(d) = waiting.pop().expect("peeked");
                    let sent = match d.to {
                        Some(to) => d.via.send_to(&d.datagram, to).await,
                        None => d.via.send(&d.datagram).await,
                    };
                    // A full socket buffer or an ICMP error is a loss,
                    // as on a real link.
                    if sent.is_ok() {
                        shared.counted(d.datagram.len());
                    }
                }
            }
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// Reads what peers send, and forwards each datagram through its peer's
/// upstream socket, made on its first datagram.
async fn forward_down(
    downstream: Arc<UdpSocket>,
    upstream_ip: IpAddr,
    target: SocketAddr,
    shared: Arc<Shared>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    outbox: Outbox,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0; MAX_DATAGRAM];
    loop {
        let Ok((len, peer)) = downstream.recv_from(&mut buf).await else {
            // An ICMP error surfaced on the socket: not ours to handle.
            continue;
        };
        let upstream = match upstreams.get(&peer) {
            Some(upstream) => Arc::clone(upstream),
            None => {
                let Ok(upstream) = connected(upstream_ip, target).await else {
                    continue;
                };
                let upstream = Arc::new(upstream);
                upstreams.insert(peer, Arc::clone(&upstream));
                shared.counters.peers.fetch_add(1, Ordering::Relaxed);
                let back = tokio::spawn(forward_up(
                    Arc::clone(&upstream),
                    Arc::clone(&downstream),
                    peer,
                    Arc::clone(&shared),
                    outbox.clone(),
                    rng.next_u64(),
                ));
                tasks.lock().expect("not poisoned").push(back);
                upstream
            }
        };
        if let Some(delay) = shared.fate(&mut rng) {
            outbox.push(delay, &buf[..len], &upstream, None);
        }
    }
}

/// Reads what the target answers one peer, and forwards it to the peer.
async fn forward_up(
    upstream: Arc<UdpSocket>,
    downstream: Arc<UdpSocket>,
    peer: SocketAddr,
    shared: Arc<Shared>,
    outbox: Outbox,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    let mut buf = vec![0; MAX_DATAGRAM];
    loop {
        let Ok(len) = upstream.recv(&mut buf).await else {
            // The target is not listening (yet, or any more): an ICMP
            // error on a connected socket. Keep going, as a NAT would.
            continue;
        };
        if let Some(delay) = shared.fate(&mut rng) {
            outbox.push(delay, &buf[..len], &downstream, Some(peer));
        }
    }
}

async fn connected(ip: IpAddr, target: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
    socket.connect(target).await?;
    Ok(socket)
}

/// xorshift64*: loss and jitter need no more, and a seed makes a run's
/// fates repeatable in the order datagrams arrive.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UDP server on loopback that sends every datagram back; its address.
    async fn echo_server() -> SocketAddr {
        let echo = UdpSocket::bind("127.0.0.1:0").await.expect("binds");
        let target = echo.local_addr().expect("bound");
        tokio::spawn(async move {
            let mut buf = [0; 64];
            while let Ok((len, from)) = echo.recv_from(&mut buf).await {
                let _ = echo.send_to(&buf[..len], from).await;
            }
        });
        target
    }

    /// Regression: each datagram was a task of its own, and the tasks a
    /// timer tick woke ran in any order, so a link without jitter still
    /// reordered, which QUIC took for loss (its window collapsed, and a
    /// delayed run took 5x longer than it had to).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_jitter_datagrams_keep_their_order() {
        let target = echo_server().await;
        let link = Link {
            loss: 0.0,
            delay: Duration::from_millis(20),
            jitter: Duration::ZERO,
        };
        let relay = Relay::start(
            "127.0.0.1:0".parse().expect("addr"),
            "127.0.0.1".parse().expect("ip"),
            target,
            link,
            11,
        )
        .await
        .expect("starts");
        let peer = UdpSocket::bind("127.0.0.1:0").await.expect("binds");
        peer.connect(relay.addr()).await.expect("connects");
        for n in 0..200u8 {
            peer.send(&[n]).await.expect("sends");
        }
        let mut order = Vec::new();
        let mut buf = [0; 64];
        while order.len() < 200 {
            let len = tokio::time::timeout(Duration::from_secs(5), peer.recv(&mut buf))
                .await
                .expect("every datagram comes back")
                .expect("receives");
            order.extend_from_slice(&buf[..len]);
        }
        assert_eq!(order, (0..200).collect::<Vec<u8>>());
    }

    /// The relay itself, on loopback: a clean link forwards both ways, a
    /// lossy one drops about its share, a partition drops everything.
    #[tokio::test]
    async fn forwards_drops_and_partitions() {
        let target = echo_server().await;
        let localhost: IpAddr = "127.0.0.1".parse().expect("ip");
        let relay = Relay::start(
            "127.0.0.1:0".parse().expect("addr"),
            localhost,
            target,
            Link::CLEAN,
            7,
        )
        .await
        .expect("starts");
        let peer = UdpSocket::bind("127.0.0.1:0").await.expect("binds");
        peer.connect(relay.addr()).await.expect("connects");
        let mut buf = [0; 64];
        let round_trip = |n: u8| {
            let peer = &peer;
            async move {
                peer.send(&[n]).await.expect("sends");
                let mut buf = [0; 64];
                tokio::time::timeout(Duration::from_millis(200), peer.recv(&mut buf))
                    .await
                    .ok()
                    .map(|len| buf[..len.expect("receives")].to_vec())
            }
        };
        assert_eq!(round_trip(1).await, Some(vec![1]));

        relay.partition();
        assert_eq!(round_trip(2).await, None);
        relay.heal();
        assert_eq!(round_trip(3).await, Some(vec![3]));

        relay.set_link(Link {
            loss: 0.5,
            delay: Duration::from_millis(1),
            jitter: Duration::from_millis(1),
        });
        for n in 0..200u8 {
            peer.send(&[n]).await.expect("sends");
        }
        let mut back = 0;
        while tokio::time::timeout(Duration::from_millis(200), peer.recv(&mut buf))
            .await
            .is_ok()
        {
            back += 1;
        }
        // Each way drops half: about a quarter come back.
        assert!((20..=80).contains(&back), "{back} of 200 came back");
        let stats = relay.stats();
        assert_eq!(stats.peers, 1);
        assert_eq!(stats.partitioned, 1);
        assert!(stats.lost > 100, "{stats:?}");
    }
}
