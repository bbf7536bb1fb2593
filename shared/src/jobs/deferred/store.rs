//! The job store: the persistence the scheduler needs (DynamoDB in [`crate::aws`], or memory).

use super::model::{Job, JobError};
use crate::time::{EpochMillis, EpochSeconds};
use async_trait::async_trait;

/// The job store.
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Write `job`, replacing any job with its id.
    async fn put(&self, job: &Job, expires_at: EpochSeconds) -> Result<(), JobError>;
    /// The job, read consistently.
    async fn get(&self, id: &str) -> Result<Option<Job>, JobError>;
    /// Delete the job (only `version` when given); whether something was deleted.
    async fn delete(&self, id: &str, version: Option<&str>) -> Result<bool, JobError>;
    /// Jobs in the index (`scheduled`, or `sending`) whose [`Job::index_time`] is at or
    /// before `until`, earliest first, at most `limit`.
    async fn due(&self, until: EpochMillis, limit: usize) -> Result<Vec<Job>, JobError>;
    /// `scheduled` (or `sending` with a lease ended by `now`) + `version` → `sending` until
    /// `lease_until`; false when the job changed or another sender holds it.
    async fn claim(
        &self,
        id: &str,
        version: &str,
        now: EpochMillis,
        lease_until: EpochMillis,
    ) -> Result<bool, JobError>;
    /// `sending` + `version` → `queued` (out of the index), after the send.
    async fn sent(&self, id: &str, version: &str) -> Result<(), JobError>;
    /// `sending` + `version` → `scheduled` (after a failed send).
    async fn unclaim(&self, job: &Job) -> Result<(), JobError>;
    /// `version` → `failed` (out of the index): the job can never be sent.
    async fn fail(&self, id: &str, version: &str) -> Result<(), JobError>;
}
