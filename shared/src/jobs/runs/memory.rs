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

impl MemoryState {
    /// Room for `runs` more runs and `streams` more streams within `cap`: when short, the
    /// runs that ended (processed or errored) are dropped with their streams, oldest first; a
    /// store whose runs are all live refuses the write rather than drop one.
    fn make_room(&mut self, cap: Capacity, runs: usize, streams: usize) -> Result<(), RunsError> {
        let short =
            |st: &Self| st.runs.len() + runs > cap.runs || st.streams.len() + streams > cap.streams;
        if !short(self) {
            return Ok(());
        }
        let mut ended: Vec<(EpochMillis, String)> = self
            .runs
            .values()
            .filter(|r| matches!(r.state, RunState::Processed | RunState::Error))
            .map(|r| (r.processed_at.unwrap_or(r.started_at), r.id.clone()))
            .collect();
        ended.sort();
        for (_, id) in ended {
            if !short(self) {
                break;
            }
            self.runs.remove(&id);
            self.streams.retain(|(run, _), _| run != &id);
        }
        if short(self) {
            return Err(RunsError::Store(format!(
                "the in-memory run store is full ({} live runs, {} streams)",
                self.runs.len(),
                self.streams.len()
            )));
        }
        Ok(())
    }
}

/// How much a [`MemoryRuns`] holds at most.
#[derive(Debug, Clone, Copy)]
struct Capacity {
    runs: usize,
    streams: usize,
}

/// In-memory run store (local runs, unit tests), bounded: at most [`MemoryRuns::RUNS`] runs
/// and [`MemoryRuns::STREAMS`] streams. A write that needs room drops ended runs (with their
/// streams), oldest first, and is refused with a store error while every run is live.
pub struct MemoryRuns(Mutex<MemoryState>, Capacity);

impl Default for MemoryRuns {
    fn default() -> Self {
        Self::with_capacity(Self::RUNS, Self::STREAMS)
    }
}

impl MemoryRuns {
    /// Runs a default store holds at most.
    pub const RUNS: usize = 1_000;
    /// Streams a default store holds at most.
    pub const STREAMS: usize = 100_000;

    /// A store of at most `runs` runs and `streams` streams (at least 1 each).
    pub fn with_capacity(runs: usize, streams: usize) -> Self {
        Self(
            Mutex::default(),
            Capacity {
                runs: runs.max(1),
                streams: streams.max(1),
            },
        )
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, MemoryState>, RunsError> {
        self.0
            .lock()
            .map_err(|_| RunsError::Store("in-memory run store poisoned".into()))
    }
}

#[async_trait]
impl RunStore for MemoryRuns {
    async fn create_run(&self, run: &Run) -> Result<(), RunsError> {
        let mut st = self.lock()?;
        if !st.runs.contains_key(&run.id) {
            st.make_room(self.1, 1, 0)?;
        }
        st.runs.insert(run.id.clone(), run.clone());
        Ok(())
    }
    async fn get_run(&self, id: &str) -> Result<Option<Run>, RunsError> {
        Ok(self.lock()?.runs.get(id).cloned())
    }
    async fn begin_run(&self, id: &str, roots: &[Stream]) -> Result<bool, RunsError> {
        let mut st = self.lock()?;
        if st.runs.get(id).is_none_or(|r| r.state != RunState::Pending) {
            return Ok(false);
        }
        st.make_room(self.1, 0, roots.len())?;
        let Some(run) = st.runs.get_mut(id) else {
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
        st.make_room(self.1, 0, children.len())?;
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

#[cfg(test)]
mod bounds {
    use super::*;
    use serde_json::json;

    fn run(id: &str) -> Run {
        Run {
            id: id.into(),
            integration: "i".into(),
            onboarding: false,
            params: json!({}),
            state: RunState::Pending,
            started_at: EpochMillis::now(),
            processed_at: None,
            error: None,
            pending: 0,
            streams_total: 0,
            errored_streams: 0,
            records: 0,
        }
    }

    /// A full store drops ended runs (with their streams) to make room and refuses a new run
    /// while every run is live.
    #[tokio::test]
    async fn a_full_memory_run_store_drops_ended_runs_and_refuses_live_ones() {
        let s = MemoryRuns::with_capacity(2, 100);
        s.create_run(&run("a")).await.unwrap();
        s.create_run(&run("b")).await.unwrap();
        let refused = s.create_run(&run("c")).await;
        assert!(matches!(refused, Err(RunsError::Store(m)) if m.contains("full")));
        // "a" ends (no streams: it ends as processed); now it makes room.
        assert!(s.begin_run("a", &[]).await.unwrap());
        assert_eq!(
            s.finish_run("a", EpochMillis::now()).await.unwrap(),
            Some(RunState::Processed)
        );
        s.create_run(&run("c"))
            .await
            .expect("the ended run makes room");
        assert!(s.get_run("a").await.unwrap().is_none());
        assert!(s.get_run("b").await.unwrap().is_some());
    }
}
