//! The faults the proxy injects: what a matching request gets instead of its answer
//! ([`Fault`]), which requests get it ([`Rule`]), and each rule's running count and seeded
//! generator.

use std::sync::Arc;

/// What a matching request gets instead of its answer.
#[derive(Clone)]
pub enum Fault {
    /// HTTP 500 with an `InternalFailure` error body (retryable for the SDK).
    Http500,
    /// HTTP 400 with this AWS error code (`ThrottlingException`,
    /// `ProvisionedThroughputExceededException`, …).
    Error(&'static str),
    /// The connection is reset before anything is answered (the request never arrives).
    Reset,
    /// The request is forwarded and applied, then the connection is reset: the client cannot
    /// tell whether it happened.
    LostReply,
    /// The request is forwarded and applied, then nothing is answered for this long (longer
    /// than the client's read timeout, so it gives up and retries), then the connection is
    /// closed: the reply arrives, if at all, after the client stopped waiting.
    LateReply(std::time::Duration),
    /// Nothing is answered for this long, then the connection is closed.
    Stall(std::time::Duration),
    /// Run this (e.g. kill the function process), then stall until the client gives up.
    Call(Arc<dyn Fn() + Send + Sync>),
    /// Answered 200 with this JSON body, not forwarded: an operation the emulator lacks (SQS's
    /// `StartMessageMoveTask` on moto). Each such request's body is kept in `seen`.
    Answer {
        body: &'static str,
        seen: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    },
}

impl std::fmt::Debug for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Http500 => write!(f, "http-500"),
            Fault::Error(code) => write!(f, "{code}"),
            Fault::Reset => write!(f, "reset"),
            Fault::LostReply => write!(f, "lost-reply"),
            Fault::LateReply(d) => write!(f, "late-reply-{}ms", d.as_millis()),
            Fault::Stall(d) => write!(f, "stall-{}ms", d.as_millis()),
            Fault::Call(_) => write!(f, "crash-point"),
            Fault::Answer { .. } => write!(f, "answer"),
        }
    }
}

impl Fault {
    /// A crash point: SIGKILL the process whose id `pid` holds when the request is seen.
    pub fn kill(pid: Arc<std::sync::atomic::AtomicU32>) -> Self {
        Fault::Call(Arc::new(move || {
            let _ = std::process::Command::new("kill")
                .args([
                    "-9",
                    &pid.load(std::sync::atomic::Ordering::SeqCst).to_string(),
                ])
                .status();
        }))
    }

    /// A short name for reports.
    pub fn kind(&self) -> String {
        format!("{self:?}")
    }
}

/// When a fault applies.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The operation (`SendMessage`, `UpdateItem`…); `*` for every request.
    pub op: String,
    pub fault: Fault,
    /// Matching requests let through before the first fault.
    pub skip: u64,
    /// Faults in all (after `skip`); 0 for no limit.
    pub times: u64,
    /// A share in 0..=1 of the matching requests (after `skip`), drawn from a generator seeded
    /// with `seed`; 1 hits every one.
    pub probability: f64,
    pub seed: u64,
}

impl Rule {
    /// `fault` on the first request for `op`, once.
    pub fn once(op: &str, fault: Fault) -> Self {
        Self {
            op: op.into(),
            fault,
            skip: 0,
            times: 1,
            probability: 1.0,
            seed: 0,
        }
    }
    /// `fault` on every request for `op`.
    pub fn always(op: &str, fault: Fault) -> Self {
        Self {
            times: 0,
            ..Self::once(op, fault)
        }
    }
    /// Let `n` matching requests through first.
    pub fn after(mut self, n: u64) -> Self {
        self.skip = n;
        self
    }
    /// At most `n` faults.
    pub fn times(mut self, n: u64) -> Self {
        self.times = n;
        self
    }
    /// A seeded share of the matching requests.
    pub fn with_probability(mut self, p: f64, seed: u64) -> Self {
        self.probability = p;
        self.seed = seed;
        self
    }
}

pub(super) struct RuleState {
    pub(super) rule: Rule,
    pub(super) seen: u64,
    pub(super) hit: u64,
    pub(super) rng: u64,
}

impl RuleState {
    /// Whether this request gets the fault (and count it).
    pub(super) fn fires(&mut self, op: &str) -> bool {
        if !matches_op(&self.rule.op, op) {
            return false;
        }
        self.seen += 1;
        if self.seen <= self.rule.skip || (self.rule.times > 0 && self.hit >= self.rule.times) {
            return false;
        }
        if self.rule.probability < 1.0 {
            // xorshift64*: deterministic for a seed and a request order.
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            let x = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
            if (x as f64) / ((1u64 << 53) as f64) >= self.rule.probability {
                return false;
            }
        }
        self.hit += 1;
        true
    }
}

fn matches_op(pattern: &str, op: &str) -> bool {
    pattern == "*" || op == pattern || op.ends_with(&format!(".{pattern}"))
}
