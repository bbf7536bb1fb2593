//! [`CallMarks`]: the keys one call marked as new, held until its answer is known to be
//! delivered, and forgotten again when it is not.
//!
//! A dedup check marks a key *before* the answer that reports it new leaves the function. When
//! that answer never reaches the caller — the function fails after its checks, the answer is
//! over `maxResponseSize` or Lambda's 6 MB, the call times out — the caller retries the page and
//! must find the keys new again, or it would drop (or report as "already imported") records it
//! never received. Each call's checks therefore register the keys they marked here; dispatch
//! forgets them when the call fails, and the transport when it cannot send the answer
//! ([`held`]); an answer that is sent keeps them.

use std::sync::{Arc, Mutex};

use super::{DedupKey, DedupStore, StoreError};

type Marked = Vec<(Arc<dyn DedupStore>, DedupKey)>;

#[derive(Default)]
enum State {
    /// The call is running (or its answer is on its way): these keys are its marks.
    #[default]
    Open,
    /// The answer was delivered: the marks stay.
    Kept,
    /// The answer was not delivered: the marks were forgotten, and so is any later one.
    Forgotten,
}

#[derive(Default)]
struct Inner {
    state: State,
    marked: Marked,
}

/// The keys one call marked (see the module docs). Cheap to clone: clones share the list.
#[derive(Clone, Default)]
pub struct CallMarks(Arc<Mutex<Inner>>);

impl std::fmt::Debug for CallMarks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallMarks").finish_non_exhaustive()
    }
}

impl CallMarks {
    /// An empty list, for one call.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned list is still a list of keys: forgetting them is what a failure needs.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Hold `keys`, marked in `store` by this call. `Err` when the call already ended without
    /// delivering its answer: the caller must forget them itself (they guard nothing).
    pub fn hold(&self, store: &Arc<dyn DedupStore>, keys: &[DedupKey]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        match inner.state {
            State::Open => {
                inner
                    .marked
                    .extend(keys.iter().map(|k| (store.clone(), k.clone())));
                Ok(())
            }
            State::Kept => Ok(()),
            State::Forgotten => Err(StoreError(
                "the call ended before its dedup checks did".into(),
            )),
        }
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.lock().marked.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The answer was delivered: the marks stay.
    pub fn keep(&self) {
        let mut inner = self.lock();
        if matches!(inner.state, State::Open) {
            inner.state = State::Kept;
            inner.marked.clear();
        }
    }

    /// The answer was not delivered: forget every held key (best effort; a key that cannot be
    /// forgotten is logged), and any key held later.
    pub async fn forget(&self) {
        let marked = {
            let mut inner = self.lock();
            if !matches!(inner.state, State::Open) {
                return;
            }
            inner.state = State::Forgotten;
            std::mem::take(&mut inner.marked)
        };
        if !marked.is_empty() {
            tracing::warn!(
                keys = marked.len(),
                "the answer was not delivered: the dedup keys its call marked are forgotten"
            );
        }
        forget_all(&marked).await;
    }
}

/// Forget every key (best effort, logged).
pub(super) async fn forget_all(marked: &[(Arc<dyn DedupStore>, DedupKey)]) {
    for (store, key) in marked {
        if let Err(e) = store.forget(key).await {
            tracing::error!(dedup_key = %key.as_str(), error = %e, "could not forget a key of an undelivered answer; a retry within its TTL will see it as a duplicate");
        }
    }
}

tokio::task_local! {
    static HELD: CallMarks;
}

/// Run `f` (a transport's handling of one request) with the marks of the calls inside it held
/// in `marks` after they succeed: the transport then knows whether it could send the answer
/// and calls [`CallMarks::keep`] or [`CallMarks::forget`]. (Not an `async fn`, which would hold
/// `f` twice: see `log_buffer::scope`.)
pub fn held<F: std::future::Future>(
    marks: CallMarks,
    f: F,
) -> impl std::future::Future<Output = F::Output> {
    HELD.scope(marks, f)
}

/// The marks a transport holds for the current request ([`held`]), if any.
pub fn held_marks() -> Option<CallMarks> {
    HELD.try_with(Clone::clone).ok()
}
