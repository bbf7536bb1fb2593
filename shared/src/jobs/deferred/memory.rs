//! The in-memory job store (local runs, unit tests).

use super::model::{Job, JobError, JobState};
use super::store::JobStore;
use crate::time::{EpochMillis, EpochSeconds};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// In-memory job store (local runs, unit tests), bounded: at most
/// [`MemoryJobs::CAPACITY`] jobs. A new job in a full store first drops the jobs whose expiry
/// (due time + 7 days, the TTL of the table's items) has passed, then is refused with a store
/// error rather than drop a live job.
#[derive(Debug)]
pub struct MemoryJobs {
    jobs: Mutex<HashMap<String, (Job, EpochSeconds)>>,
    capacity: usize,
}

impl Default for MemoryJobs {
    fn default() -> Self {
        Self::with_capacity(Self::CAPACITY)
    }
}

type Jobs = HashMap<String, (Job, EpochSeconds)>;

impl MemoryJobs {
    /// Jobs a default store holds at most.
    pub const CAPACITY: usize = 10_000;

    /// A store of at most `capacity` jobs (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            jobs: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Jobs>, JobError> {
        self.jobs
            .lock()
            .map_err(|_| JobError::Store("in-memory job store poisoned".into()))
    }
}

#[async_trait]
impl JobStore for MemoryJobs {
    async fn put(&self, job: &Job, expires_at: EpochSeconds) -> Result<(), JobError> {
        let mut jobs = self.lock()?;
        if jobs.len() >= self.capacity && !jobs.contains_key(&job.id) {
            let now = EpochSeconds::now();
            jobs.retain(|_, (_, exp)| *exp > now);
            if jobs.len() >= self.capacity {
                return Err(JobError::Store(format!(
                    "the in-memory job store is full ({} live jobs)",
                    jobs.len()
                )));
            }
        }
        jobs.insert(job.id.clone(), (job.clone(), expires_at));
        Ok(())
    }
    async fn get(&self, id: &str) -> Result<Option<Job>, JobError> {
        Ok(self.lock()?.get(id).map(|(j, _)| j.clone()))
    }
    async fn delete(&self, id: &str, version: Option<&str>) -> Result<bool, JobError> {
        let mut jobs = self.lock()?;
        match (jobs.get(id).map(|(j, _)| j), version) {
            (Some(j), Some(v)) if j.version != v => Ok(false),
            (Some(_), _) => Ok(jobs.remove(id).is_some()),
            (None, _) => Ok(false),
        }
    }
    async fn due(&self, until: EpochMillis, limit: usize) -> Result<Vec<Job>, JobError> {
        let jobs = self.lock()?;
        let sorted: BTreeMap<(u64, &str), &Job> = jobs
            .values()
            .map(|(j, _)| j)
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
        match jobs.get_mut(id).map(|(j, _)| j) {
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
        if let Some((j, _)) = jobs.get_mut(id)
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
        if let Some((j, _)) = jobs.get_mut(id)
            && j.version == version
            && j.state == from
        {
            j.state = to;
            j.lease_until = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod bounds {
    use super::*;

    fn job(id: &str) -> Job {
        Job {
            id: id.into(),
            version: "v1".into(),
            state: JobState::Scheduled,
            due_at: EpochMillis::now(),
            body: "{}".into(),
            lease_until: None,
        }
    }

    /// A full store drops expired jobs to make room and refuses a new job while all are live;
    /// a job already held can still be replaced.
    #[tokio::test]
    async fn a_full_memory_job_store_drops_expired_jobs_and_refuses_live_ones() {
        let s = MemoryJobs::with_capacity(2);
        let live = EpochSeconds(EpochSeconds::now().0 + 3600);
        let past = EpochSeconds(EpochSeconds::now().0.saturating_sub(1));
        s.put(&job("a"), past).await.unwrap();
        s.put(&job("b"), live).await.unwrap();
        s.put(&job("c"), live)
            .await
            .expect("the expired job makes room");
        assert!(s.get("a").await.unwrap().is_none());
        let refused = s.put(&job("d"), live).await;
        assert!(matches!(refused, Err(JobError::Store(m)) if m.contains("full")));
        s.put(&job("b"), live)
            .await
            .expect("a held job is replaced");
        assert!(s.get("b").await.unwrap().is_some() && s.get("c").await.unwrap().is_some());
    }
}
