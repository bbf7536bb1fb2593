//! Where segment documents go: the X-Ray daemon over UDP ([`UdpSink`]), or memory (tests).

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Mutex, OnceLock, PoisonError};

/// The daemon's header line, before each document.
pub const HEADER: &str = "{\"format\":\"json\",\"version\":1}\n";
/// Batches waiting for the sending thread; more are dropped.
const QUEUE: usize = 256;
/// The largest datagram the daemon reads.
const MAX_DATAGRAM: usize = 64 * 1024;

/// Takes a call's segment documents. Must not block.
pub trait SegmentSink: Send + Sync + 'static {
    /// Send (or drop) these documents.
    fn send(&self, docs: Vec<String>);
}

/// The X-Ray daemon at a UDP address. Documents are handed to one background thread, which
/// sends each as a datagram (header line + document); a full queue, an absent daemon or a send
/// error drops them silently.
#[derive(Debug)]
pub struct UdpSink {
    daemon: SocketAddr,
    queue: OnceLock<Option<SyncSender<Vec<String>>>>,
}

impl UdpSink {
    /// A sink to the daemon at `daemon` (its thread starts with the first documents).
    pub fn new(daemon: SocketAddr) -> Self {
        Self {
            daemon,
            queue: OnceLock::new(),
        }
    }

    fn start(daemon: SocketAddr) -> Option<SyncSender<Vec<String>>> {
        let local: SocketAddr = if daemon.ip().is_loopback() {
            (daemon.ip(), 0).into()
        } else if daemon.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local).ok()?;
        let (tx, rx) = sync_channel::<Vec<String>>(QUEUE);
        std::thread::Builder::new()
            .name("xray-sender".into())
            .spawn(move || {
                let mut datagram = Vec::new();
                for docs in rx {
                    for doc in docs {
                        datagram.clear();
                        datagram.extend_from_slice(HEADER.as_bytes());
                        datagram.extend_from_slice(doc.as_bytes());
                        if datagram.len() <= MAX_DATAGRAM {
                            // Nothing listening (ICMP refused) or any other error: dropped.
                            let _ = socket.send_to(&datagram, daemon);
                        }
                    }
                }
            })
            .ok()?;
        Some(tx)
    }
}

impl SegmentSink for UdpSink {
    fn send(&self, docs: Vec<String>) {
        let queue = self.queue.get_or_init(|| Self::start(self.daemon));
        if let Some(tx) = queue {
            match tx.try_send(docs) {
                Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
            }
        }
    }
}

/// Documents kept in memory (tests).
#[derive(Debug, Default)]
pub struct MemorySink(Mutex<Vec<String>>);

impl MemorySink {
    /// Every document sent so far.
    pub fn documents(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl SegmentSink for MemorySink {
    fn send(&self, docs: Vec<String>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(docs);
    }
}
