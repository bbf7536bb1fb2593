//! Server-stack authentication: where the system token is read from, and how it is compared.

use http::HeaderMap;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The system tokens this deployment accepts. Several may be active at once so a token can be
/// rotated in integrator.io without downtime. Only SHA-256 digests are held; comparison is
/// constant-time and always checks every configured token.
#[derive(Clone, Default)]
pub struct TokenSet {
    digests: Vec<[u8; 32]>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenSet({} token(s))", self.digests.len())
    }
}

fn digest(s: &[u8]) -> [u8; 32] {
    Sha256::digest(s).into()
}

impl TokenSet {
    pub fn new<I, S>(tokens: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let digests = tokens
            .into_iter()
            .map(|t| t.as_ref().trim().to_owned())
            .filter(|t| !t.is_empty())
            .map(|t| digest(t.as_bytes()))
            .collect();
        Self { digests }
    }

    /// Parse a configuration value holding one or more tokens separated by commas or whitespace.
    pub fn parse(list: &str) -> Self {
        Self::new(split_tokens(list))
    }

    /// [`parse`](Self::parse), registering every token for log redaction one by one (the list
    /// as a whole never appears in a log; each token may).
    pub fn parse_redacted(list: &str) -> Self {
        for t in split_tokens(list) {
            crate::telemetry::redact(t);
        }
        Self::parse(list)
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Constant-time membership test.
    pub fn accepts(&self, candidate: &str) -> bool {
        let d = digest(candidate.as_bytes());
        let mut ok = subtle::Choice::from(0u8);
        for known in &self.digests {
            ok |= known.ct_eq(&d);
        }
        bool::from(ok)
    }
}

/// Where the system tokens are read from when they can change while the process runs (the
/// secret `INTEGRATOR_EXTENSION_SYSTEM_TOKEN_SECRET` names); the startup module provides it.
#[async_trait::async_trait]
pub trait TokenSource: Send + Sync + 'static {
    /// The tokens as they are now, read afresh (never from a cache), within `deadline`.
    async fn load(&self, deadline: Instant) -> Result<TokenSet, String>;
}

/// [`SystemTokens`] re-reads its source at most once per this interval (per process, i.e. per
/// Lambda instance), so a flood of wrong tokens costs at most one secret read per interval.
pub const TOKEN_REFRESH_INTERVAL: Duration = Duration::from_secs(5);
/// How long a re-read may take, and a request wait for one in flight, before the tokens held
/// answer alone.
pub const TOKEN_REFRESH_TIMEOUT: Duration = Duration::from_secs(3);
/// Tokens held longer than this are re-read at the next request even when its token matches,
/// so a token removed from the secret stops working within this time even if nobody presents
/// its replacement.
pub const TOKEN_MAX_AGE: Duration = Duration::from_secs(300);

/// The system tokens a running process accepts: a fixed [`TokenSet`], or one re-read from its
/// [`TokenSource`] when the secret may have changed:
///
/// - a presented token that matches none triggers a re-read, then is checked against the new
///   tokens (a token added to the secret works from its first use);
/// - a set older than [`TOKEN_MAX_AGE`] is re-read at the next request (a token removed from
///   the secret stops working; at once when its replacement is presented);
/// - at most one re-read every [`TOKEN_REFRESH_INTERVAL`], one at a time: requests arriving
///   during a re-read wait for it (at most [`TOKEN_REFRESH_TIMEOUT`]) and are checked against
///   its result; within the interval a wrong token is refused without a re-read;
/// - a failed re-read keeps the tokens held (logged); the interval still applies.
pub struct SystemTokens {
    held: RwLock<Held>,
    source: Option<Arc<dyn TokenSource>>,
    interval: Duration,
    max_age: Duration,
    /// Held while a re-read runs; the time of the last one started.
    refresh: tokio::sync::Mutex<Option<Instant>>,
}

#[derive(Clone)]
struct Held {
    tokens: Arc<TokenSet>,
    loaded: Instant,
    /// Bumped at every successful re-read.
    generation: u64,
}

impl fmt::Debug for SystemTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemTokens")
            .field("tokens", &self.held().tokens)
            .field("refreshed", &self.source.is_some())
            .finish_non_exhaustive()
    }
}

impl From<TokenSet> for SystemTokens {
    fn from(tokens: TokenSet) -> Self {
        Self::fixed(tokens)
    }
}

impl SystemTokens {
    /// These tokens, never re-read (the plain variable, the conformance binaries, tests).
    pub fn fixed(tokens: TokenSet) -> Self {
        Self {
            held: RwLock::new(Held {
                tokens: Arc::new(tokens),
                loaded: Instant::now(),
                generation: 0,
            }),
            source: None,
            interval: TOKEN_REFRESH_INTERVAL,
            max_age: TOKEN_MAX_AGE,
            refresh: tokio::sync::Mutex::new(None),
        }
    }

    /// `initial` (just read from `source`), re-read from `source` as described on the type.
    pub fn refreshed(initial: TokenSet, source: Arc<dyn TokenSource>) -> Self {
        Self {
            source: Some(source),
            // The initial read counts: the next one is an interval away at the soonest.
            refresh: tokio::sync::Mutex::new(Some(Instant::now())),
            ..Self::fixed(initial)
        }
    }

    /// Another refresh interval than [`TOKEN_REFRESH_INTERVAL`] (tests).
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Another maximum age than [`TOKEN_MAX_AGE`] (tests).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    fn held(&self) -> Held {
        self.held
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many tokens are held now.
    pub fn len(&self) -> usize {
        self.held().tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Is `candidate` one of the system tokens? (Constant-time against every token held; may
    /// re-read the source first, see the type.)
    pub async fn accepts(&self, candidate: &str) -> bool {
        let seen = self.held();
        let matched = seen.tokens.accepts(candidate);
        let Some(source) = &self.source else {
            return matched;
        };
        if matched && seen.loaded.elapsed() < self.max_age {
            return true;
        }
        // One re-read at a time: the others wait for it and use what it read.
        let Ok(mut last) = tokio::time::timeout(TOKEN_REFRESH_TIMEOUT, self.refresh.lock()).await
        else {
            return matched;
        };
        let now = self.held();
        if now.generation != seen.generation {
            return now.tokens.accepts(candidate);
        }
        if last.is_some_and(|t| t.elapsed() < self.interval) {
            return matched;
        }
        *last = Some(Instant::now());
        let deadline = Instant::now() + TOKEN_REFRESH_TIMEOUT;
        let loaded = tokio::time::timeout(TOKEN_REFRESH_TIMEOUT, source.load(deadline)).await;
        match loaded {
            Ok(Ok(tokens)) => {
                if tokens.is_empty() {
                    tracing::warn!(
                        "the system token secret holds no token: POST /function will answer 401"
                    );
                }
                tracing::info!(tokens = tokens.len(), "system tokens re-read");
                let tokens = Arc::new(tokens);
                let mut held = self.held.write().unwrap_or_else(PoisonError::into_inner);
                *held = Held {
                    tokens: tokens.clone(),
                    loaded: Instant::now(),
                    generation: held.generation.wrapping_add(1),
                };
                drop(held);
                tokens.accepts(candidate)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "system tokens not re-read: the tokens held still apply");
                matched
            }
            Err(_) => {
                tracing::warn!("system tokens not re-read in time: the tokens held still apply");
                matched
            }
        }
    }
}

/// The tokens of a configuration value: separated by commas or whitespace, empty ones skipped.
pub fn split_tokens(list: &str) -> impl Iterator<Item = &str> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Where a token was found, following the reference server's rules.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    /// A token to check.
    Token(String),
    /// Something was presented that can never match (malformed header, non-string body token).
    Invalid,
    /// No token anywhere.
    Missing,
}

/// Find the presented token:
/// 1. With an `Authorization` header: split on single spaces; exactly two parts and a
///    case-insensitive `Bearer` scheme, else no token (and nothing else is consulted).
/// 2. Without one: the body's `access_token` (`body_token`) when truthy (final, even if wrong), else the
///    query's `access_token`.
pub fn presented_token(
    headers: &HeaderMap,
    body_token: Option<&Value>,
    query: Option<&str>,
) -> Presented {
    if let Some(h) = headers.get(http::header::AUTHORIZATION) {
        let Ok(h) = h.to_str() else {
            return Presented::Invalid;
        };
        let parts: Vec<&str> = h.split(' ').collect();
        return match parts.as_slice() {
            [scheme, token] if scheme.eq_ignore_ascii_case("bearer") => {
                Presented::Token((*token).to_owned())
            }
            _ => Presented::Invalid,
        };
    }
    if let Some(t) = body_token
        && crate::protocol::truthy(Some(t))
    {
        return match t {
            Value::String(s) => Presented::Token(s.clone()),
            _ => Presented::Invalid,
        };
    }
    if let Some(q) = query {
        let mut found: Vec<String> = form_urlencoded::parse(q.as_bytes())
            .filter(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned())
            .collect();
        return match found.len() {
            0 => Presented::Missing,
            // Express turns a repeated parameter into an array, which never equals the token.
            1 => Presented::Token(found.remove(0)),
            _ => Presented::Invalid,
        };
    }
    Presented::Missing
}

#[cfg(test)]
mod tests;
