//! The in-memory job store (local runs, unit tests).

use super::model::{Job, JobError, JobState};
use super::store::JobStore;
use crate::time::{EpochMillis, EpochSeconds};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// In-memory job store (local runs, unit tests).
#[derive(Debug, Default)]
pub struct MemoryJobs {
    jobs: Mutex<HashMap<String, Job>>,
}

impl MemoryJobs {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Job>>, JobError> {
        self.jobs
            .lock()
            .map_err(|_| JobError::Store("in-memory job store poisoned".into()))
    }
}

#[async_trait]
impl JobStore for MemoryJobs {
    async fn put(&self, job: &Job, _expires_at: EpochSeconds) -> Result<(), JobError> {
        self.lock()?.insert(job.id.clone(), job.clone());
        Ok(())
    }
    async fn get(&self, id: &str) -> Result<Option<Job>, JobError> {
        Ok(self.lock()?.get(id).cloned())
    }
    async fn delete(&self, id: &str, version: Option<&str>) -> Result<bool, JobError> {
        let mut jobs = self.lock()?;
        match (jobs.get(id), version) {
            (Some(j), Some(v)) if j.version != v => Ok(false),
            (Some(_), _) => Ok(jobs.remove(id).is_some()),
            (None, _) => Ok(false),
        }
    }
    async fn due(&self, until: EpochMillis, limit: usize) -> Result<Vec<Job>, JobError> {
        let jobs = self.lock()?;
        let sorted: BTreeMap<(u64, &str), &Job> = jobs
            .values()
            .filter(|j| matches!(j.state, JobState::Scheduled | JobState::Sending))
            .filter(|j| j.index_time() <= until)
            .map(|j| ((j.index_time().0, j.id.as_str()), j))
            .collect();
        Ok(sorted.into_values().take(limit).cloned().collect())
    }
    async fn claim(
        &self,
        id: &str,
        version: &str,
        now: EpochMillis,
        lease_until: EpochMillis,
    ) -> Result<bool, JobError> {
        let mut jobs = self.lock()?;
        match jobs.get_mut(id) {
            Some(j)
                if j.version == version
                    && (j.state == JobState::Scheduled
                        || (j.state == JobState::Sending && j.index_time() <= now)) =>
            {
                j.state = JobState::Sending;
                j.lease_until = Some(lease_until);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn sent(&self, id: &str, version: &str) -> Result<(), JobError> {
        self.set_state(id, version, JobState::Sending, JobState::Queued)
    }
    async fn unclaim(&self, job: &Job) -> Result<(), JobError> {
        self.set_state(
            &job.id,
            &job.version,
            JobState::Sending,
            JobState::Scheduled,
        )
    }
    async fn fail(&self, id: &str, version: &str) -> Result<(), JobError> {
        let mut jobs = self.lock()?;
        if let Some(j) = jobs.get_mut(id)
            && j.version == version
        {
            j.state = JobState::Failed;
            j.lease_until = None;
        }
        Ok(())
    }
}

impl MemoryJobs {
    fn set_state(
        &self,
        id: &str,
        version: &str,
        from: JobState,
        to: JobState,
    ) -> Result<(), JobError> {
        let mut jobs = self.lock()?;
        if let Some(j) = jobs.get_mut(id)
            && j.version == version
            && j.state == from
        {
            j.state = to;
            j.lease_until = None;
        }
        Ok(())
    }
}
