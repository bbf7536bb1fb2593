//! The run store: the persistence a run engine needs (DynamoDB in [`crate::aws`], or memory).

use super::model::{Finish, Run, RunState, RunsError, Stream};
use crate::time::EpochMillis;
use async_trait::async_trait;

/// The run store.
#[async_trait]
#[doc(hidden)]
pub trait RunStore: Send + Sync + 'static {
    async fn create_run(&self, run: &Run) -> Result<(), RunsError>;
    async fn get_run(&self, id: &str) -> Result<Option<Run>, RunsError>;
    /// `pending` → `processing`; false when the run is not pending.
    async fn begin_run(&self, id: &str, roots: &[Stream]) -> Result<bool, RunsError>;
    /// Claim a stream for `attempt` (see the module docs); the stream when claimed.
    async fn claim_stream(
        &self,
        run_id: &str,
        stream_id: &str,
        attempt: u32,
        now: EpochMillis,
    ) -> Result<Option<Stream>, RunsError>;
    /// Record that the claimed stream's attempt applied its `records` operations (before its
    /// commit); false when the claim was lost. The stream's next claim carries it
    /// ([`Stream::applied`](super::Stream::applied)).
    async fn mark_applied(&self, s: &Stream, records: u64) -> Result<bool, RunsError>;
    /// End a claimed stream (one transaction with its children and the run's counters);
    /// false when the claim was lost.
    async fn finish_stream(&self, s: &Stream, finish: &Finish) -> Result<bool, RunsError>;
    /// A claimed stream failed but may retry: back to `pending` with `attempt + 1`.
    async fn retry_stream(&self, s: &Stream, error: &str) -> Result<bool, RunsError>;
    /// Every stream of a run.
    async fn list_streams(&self, run_id: &str) -> Result<Vec<Stream>, RunsError>;
    /// Give a stuck stream a new attempt (`error` streams reopen the run); false when it
    /// changed meanwhile.
    async fn reopen_stream(&self, s: &Stream) -> Result<bool, RunsError>;
    /// `processing` with `pending = 0` → `processed` or `error`; the new state if changed.
    async fn finish_run(&self, id: &str, now: EpochMillis) -> Result<Option<RunState>, RunsError>;
}
