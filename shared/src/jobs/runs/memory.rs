//! The in-memory run store (local runs, unit tests).

use super::LEASE;
use super::model::{Finish, Run, RunState, RunsError, Stream, StreamState};
use super::store::RunStore;
use crate::time::EpochMillis;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
struct MemoryState {
    runs: HashMap<String, Run>,
    streams: HashMap<(String, String), Stream>,
}

/// In-memory run store (local runs, unit tests).
#[derive(Default)]
pub struct MemoryRuns(Mutex<MemoryState>);

impl MemoryRuns {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, MemoryState>, RunsError> {
        self.0
            .lock()
            .map_err(|_| RunsError::Store("in-memory run store poisoned".into()))
    }
}

#[async_trait]
impl RunStore for MemoryRuns {
    async fn create_run(&self, run: &Run) -> Result<(), RunsError> {
        self.lock()?.runs.insert(run.id.clone(), run.clone());
        Ok(())
    }
    async fn get_run(&self, id: &str) -> Result<Option<Run>, RunsError> {
        Ok(self.lock()?.runs.get(id).cloned())
    }
    async fn begin_run(&self, id: &str, roots: &[Stream]) -> Result<bool, RunsError> {
        let mut st = self.lock()?;
        let Some(run) = st.runs.get_mut(id).filter(|r| r.state == RunState::Pending) else {
            return Ok(false);
        };
        run.state = RunState::Processing;
        run.pending += roots.len() as i64;
        run.streams_total += roots.len() as i64;
        for s in roots {
            st.streams
                .insert((s.run_id.clone(), s.id.clone()), s.clone());
        }
        Ok(true)
    }
    async fn claim_stream(
        &self,
        run_id: &str,
        stream_id: &str,
        attempt: u32,
        now: EpochMillis,
    ) -> Result<Option<Stream>, RunsError> {
        let mut st = self.lock()?;
        let Some(s) = st.streams.get_mut(&(run_id.into(), stream_id.into())) else {
            return Ok(None);
        };
        let free = s.state == StreamState::Pending
            || (s.state == StreamState::Processing && s.lease_until < now);
        if s.attempt != attempt || !free {
            return Ok(None);
        }
        s.state = StreamState::Processing;
        s.lease_until = now.after(LEASE);
        Ok(Some(s.clone()))
    }
    async fn mark_applied(&self, s: &Stream, records: u64) -> Result<bool, RunsError> {
        let mut st = self.lock()?;
        match st.streams.get_mut(&(s.run_id.clone(), s.id.clone())) {
            Some(cur) if cur.state == StreamState::Processing && cur.attempt == s.attempt => {
                cur.applied = Some((s.attempt, records));
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn finish_stream(&self, s: &Stream, finish: &Finish) -> Result<bool, RunsError> {
        let mut st = self.lock()?;
        let key = (s.run_id.clone(), s.id.clone());
        match st.streams.get(&key) {
            Some(cur) if cur.state == StreamState::Processing && cur.attempt == s.attempt => {}
            _ => return Ok(false),
        }
        let (state, error, records, children): (_, _, u64, &[Stream]) = match finish {
            Finish::Processed { records, children } => {
                (StreamState::Processed, None, *records, children)
            }
            Finish::Errored { error } => (StreamState::Error, Some(error.clone()), 0, &[]),
        };
        if let Some(cur) = st.streams.get_mut(&key) {
            cur.state = state;
            cur.error = error;
        }
        for c in children {
            st.streams
                .entry((c.run_id.clone(), c.id.clone()))
                .or_insert_with(|| c.clone());
        }
        if let Some(run) = st.runs.get_mut(&s.run_id) {
            run.pending += children.len() as i64 - 1;
            run.streams_total += children.len() as i64;
            run.records += records as i64;
            if state == StreamState::Error {
                run.errored_streams += 1;
            }
        }
        Ok(true)
    }
    async fn retry_stream(&self, s: &Stream, error: &str) -> Result<bool, RunsError> {
        let mut st = self.lock()?;
        match st.streams.get_mut(&(s.run_id.clone(), s.id.clone())) {
            Some(cur) if cur.state == StreamState::Processing && cur.attempt == s.attempt => {
                cur.state = StreamState::Pending;
                cur.attempt += 1;
                cur.retries += 1;
                cur.error = Some(error.to_owned());
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn list_streams(&self, run_id: &str) -> Result<Vec<Stream>, RunsError> {
        let st = self.lock()?;
        let mut v: Vec<Stream> = st
            .streams
            .values()
            .filter(|s| s.run_id == run_id)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }
    async fn reopen_stream(&self, s: &Stream) -> Result<bool, RunsError> {
        let mut st = self.lock()?;
        match st.streams.get_mut(&(s.run_id.clone(), s.id.clone())) {
            Some(cur) if cur.state == s.state && cur.attempt == s.attempt => {
                let was_error = cur.state == StreamState::Error;
                cur.state = StreamState::Pending;
                cur.attempt += 1;
                if was_error {
                    cur.retries = 0;
                    if let Some(run) = st.runs.get_mut(&s.run_id) {
                        run.pending += 1;
                        run.errored_streams -= 1;
                        run.state = RunState::Processing;
                        run.processed_at = None;
                        run.error = None;
                    }
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn finish_run(&self, id: &str, now: EpochMillis) -> Result<Option<RunState>, RunsError> {
        let mut st = self.lock()?;
        let Some(run) = st.runs.get_mut(id) else {
            return Ok(None);
        };
        let Some((state, error)) = run.ending() else {
            return Ok(None);
        };
        run.state = state;
        run.error = error;
        run.processed_at = Some(now);
        Ok(Some(run.state))
    }
}
