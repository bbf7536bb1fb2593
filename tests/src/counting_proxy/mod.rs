//! A tiny counting, fault-injecting HTTP/1.1 reverse proxy at the emulator boundary: it measures
//! AWS requests and, on request, breaks them.
//!
//! # Faults
//!
//! [`CountingProxy::inject`] adds a [`Rule`]: requests whose operation matches (`X-Amz-Target`
//! suffix such as `SendMessage` or `UpdateItem`, or a query-protocol `Action=`) are answered
//! with a [`Fault`] instead of being forwarded — an HTTP 500, a throttling error, a reset
//! connection, a stall longer than any client timeout, the reply lost after the emulator
//! applied the request (or held until after the client's timeout), or a callback (e.g. killing the function process: a crash point).
//! A rule hits the `skip`+1-th matching request and the `times` after it, or a seeded
//! pseudo-random share of them ([`Rule::with_probability`]): the same seed and the same request
//! order give the same faults.
//!
//! Point an SDK client at [`CountingProxy::endpoint`]; every request is read whole (head and
//! `Content-Length` or chunked body), counted by its `X-Amz-Target` header (e.g.
//! `DynamoDB_20120810.UpdateItem`; requests without one count as `-`), forwarded to the
//! upstream over a fresh connection with `Connection: close`, and the whole response is relayed
//! back with a `Content-Length`. Client connections are kept alive: several requests may
//! arrive on one connection, each counted and forwarded in turn.
//!
//! [`CountingProxy::start_serialized`] forwards one request at a time, in arrival order. moto's
//! threaded server does not serialize writes to one item (its `update_item` reads the item,
//! then creates it, with no lock), while DynamoDB does; serializing at the boundary restores
//! DynamoDB's per-item ordering for race tests, and the clients still race each other.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let proxy = integration_tests::counting_proxy::CountingProxy::start("http://127.0.0.1:5055").await?;
//! // … SDK calls against proxy.endpoint() …
//! assert_eq!(proxy.count("UpdateItem"), 1);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

mod faults;
mod wire;

use faults::RuleState;
pub use faults::{Fault, Rule};
#[cfg(test)]
use wire::dechunk;
use wire::{Head, forward, read_message, write_all};

type Counts = Arc<Mutex<HashMap<String, u64>>>;
type Serial = Arc<tokio::sync::Mutex<()>>;
type Rules = Arc<Mutex<Vec<RuleState>>>;

/// A running proxy; stops when dropped.
pub struct CountingProxy {
    addr: SocketAddr,
    counts: Counts,
    rules: Rules,
    faults: Counts,
    task: JoinHandle<()>,
}

impl CountingProxy {
    /// Listen on 127.0.0.1 (any free port) and forward to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> io::Result<Self> {
        Self::start_with(upstream, None).await
    }

    /// Like [`CountingProxy::start`], but forwarding one request at a time (see the module
    /// docs).
    pub async fn start_serialized(upstream: &str) -> io::Result<Self> {
        Self::start_with(upstream, Some(Arc::default())).await
    }

    async fn start_with(upstream: &str, serial: Option<Serial>) -> io::Result<Self> {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let counts: Counts = Arc::default();
        let rules: Rules = Arc::default();
        let faults: Counts = Arc::default();
        let task = tokio::spawn({
            let counts = counts.clone();
            let rules = rules.clone();
            let faults = faults.clone();
            async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    let shared = Shared {
                        counts: counts.clone(),
                        rules: rules.clone(),
                        faults: faults.clone(),
                        serial: serial.clone(),
                    };
                    let upstream = upstream.clone();
                    tokio::spawn(async move {
                        if let Err(e) = serve(client, &upstream, &shared).await {
                            eprintln!("counting proxy: {e}");
                        }
                    });
                }
            }
        });
        Ok(Self {
            addr,
            counts,
            rules,
            faults,
            task,
        })
    }

    /// Add a fault rule (rules are tried in the order added; the first that fires wins).
    pub fn inject(&self, rule: Rule) {
        if let Ok(mut r) = self.rules.lock() {
            let rng = rule.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            r.push(RuleState {
                rule,
                seen: 0,
                hit: 0,
                rng,
            });
        }
    }

    /// Remove every fault rule.
    pub fn clear_faults(&self) {
        if let Ok(mut r) = self.rules.lock() {
            r.clear();
        }
    }

    /// Faults injected so far, by kind.
    pub fn faults(&self) -> HashMap<String, u64> {
        self.faults.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, for `endpoint_url`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests seen so far, by `X-Amz-Target`.
    pub fn counts(&self) -> HashMap<String, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Requests whose target is `op` or ends with `.op` (`"UpdateItem"` matches
    /// `DynamoDB_20120810.UpdateItem`).
    pub fn count(&self, op: &str) -> u64 {
        let suffix = format!(".{op}");
        self.counts()
            .into_iter()
            .filter(|(k, _)| k == op || k.ends_with(&suffix))
            .map(|(_, n)| n)
            .sum()
    }

    /// All requests seen so far.
    pub fn total(&self) -> u64 {
        self.counts().values().sum()
    }

    /// Forget the counts.
    pub fn reset(&self) {
        if let Ok(mut c) = self.counts.lock() {
            c.clear();
        }
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What every connection of one proxy shares.
struct Shared {
    counts: Counts,
    rules: Rules,
    faults: Counts,
    serial: Option<Serial>,
}

/// The operation of a request: its `X-Amz-Target`, else a query-protocol `Action=`, else `-`.
fn operation(head: &Head, body: &[u8]) -> String {
    if let Some(t) = head.get("x-amz-target") {
        return t.to_owned();
    }
    let query = head.start.split_whitespace().nth(1).unwrap_or_default();
    let form = std::str::from_utf8(body).unwrap_or_default();
    query
        .split(['?', '&'])
        .chain(form.split('&'))
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or("-")
        .to_owned()
}

/// An AWS JSON-protocol error answer.
fn error_response(status: u16, reason: &str, code: &str) -> Vec<u8> {
    let body = format!(r#"{{"__type":"{code}","message":"injected by the test proxy"}}"#);
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/x-amz-json-1.0\r\nx-amzn-ErrorType: {code}\r\nx-amzn-query-error: {code};Sender\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reset `client` (RST, not FIN) and end the connection.
fn reset(client: TcpStream) -> io::Result<()> {
    client.set_zero_linger()?;
    drop(client);
    Ok(())
}

async fn serve(client: TcpStream, upstream: &str, shared: &Shared) -> io::Result<()> {
    let mut pending = Vec::new();
    while let Some((head, body)) = read_message(&client, &mut pending, false).await? {
        let target = operation(&head, &body);
        if let Ok(mut c) = shared.counts.lock() {
            *c.entry(target.clone()).or_insert(0) += 1;
        }
        let fault = shared.rules.lock().ok().and_then(|mut rules| {
            rules
                .iter_mut()
                .find_map(|r| r.fires(&target).then(|| r.rule.fault.clone()))
        });
        if let Some(fault) = fault {
            if let Ok(mut f) = shared.faults.lock() {
                *f.entry(fault.kind()).or_insert(0) += 1;
            }
            match fault {
                Fault::Http500 => {
                    write_all(
                        &client,
                        &error_response(500, "Internal Server Error", "InternalFailure"),
                    )
                    .await?;
                    continue;
                }
                Fault::Error(code) => {
                    write_all(&client, &error_response(400, "Bad Request", code)).await?;
                    continue;
                }
                Fault::Reset => return reset(client),
                Fault::LostReply => {
                    let _ = forward(upstream, &head, &body).await;
                    return reset(client);
                }
                Fault::LateReply(d) => {
                    let _ = forward(upstream, &head, &body).await;
                    tokio::time::sleep(d).await;
                    return Ok(());
                }
                Fault::Stall(d) => {
                    tokio::time::sleep(d).await;
                    return Ok(());
                }
                Fault::Answer { body: answer, seen } => {
                    if let Ok(mut seen) = seen.lock() {
                        seen.push(body.to_vec());
                    }
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    write_all(&client, response.as_bytes()).await?;
                    continue;
                }
                Fault::Call(f) => {
                    f();
                    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                    return Ok(());
                }
            }
        }
        let close = head
            .get("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let turn = match &shared.serial {
            Some(s) => Some(s.lock().await),
            None => None,
        };
        let forwarded = forward(upstream, &head, &body).await;
        drop(turn);
        let response = match forwarded {
            Ok(r) => r,
            Err(e) => {
                let msg = format!("counting proxy: upstream failed: {e}");
                format!(
                    "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{msg}",
                    msg.len()
                )
                .into_bytes()
            }
        };
        write_all(&client, &response).await?;
        if close {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunks_complete_bodies_only() {
        let full = b"4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\n\r\nNEXT";
        let (body, used) = dechunk(full).unwrap().unwrap();
        assert_eq!(body, b"Wikipedia");
        assert_eq!(&full[used..], b"NEXT");
        assert!(dechunk(&full[..10]).unwrap().is_none());
    }

    #[test]
    fn rules_fire_by_count_and_by_seeded_share() {
        let mut r = RuleState {
            rule: Rule::once("SendMessage", Fault::Reset).after(2),
            seen: 0,
            hit: 0,
            rng: 1,
        };
        let fired: Vec<bool> = (0..5).map(|_| r.fires("AmazonSQS.SendMessage")).collect();
        assert_eq!(fired, [false, false, true, false, false]);
        assert!(!r.fires("DynamoDB_20120810.UpdateItem"));
        let share = |seed| {
            let rule = Rule::always("*", Fault::Http500).with_probability(0.1, seed);
            let mut st = RuleState {
                rng: rule.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
                rule,
                seen: 0,
                hit: 0,
            };
            (0..10_000).filter(|_| st.fires("x")).count()
        };
        assert_eq!(share(7), share(7), "deterministic for a seed");
        assert!((800..1200).contains(&share(7)), "{}", share(7));
    }
}
