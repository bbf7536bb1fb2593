//! The integrations a worker can run: the [`IntegrationService`] trait and its registry.

use super::BoxError;
use super::model::{ApplyKey, RunContext, StreamResult, StreamSpec};
use crate::jobs::limits::GlobalLimit;
use async_trait::async_trait;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// An integration the worker can run.
#[async_trait]
pub trait IntegrationService: Send + Sync + 'static {
    /// The id `make run-integration ID=…` names.
    fn integration_type(&self) -> &str;
    /// Retries of a failing stream before it is marked `error`.
    fn max_retries(&self) -> u32 {
        3
    }
    /// An allowance of stream executions per period, if the partner API has one.
    fn global_limit(&self) -> Option<GlobalLimit> {
        None
    }
    /// The first streams of a run.
    async fn get_streams(&self, ctx: &RunContext) -> Result<Vec<StreamSpec>, BoxError>;
    /// Process one stream.
    async fn process_stream(
        &self,
        ctx: &RunContext,
        stream: &StreamSpec,
    ) -> Result<StreamResult, BoxError>;
    /// Apply a stream's operations (default: count them). An error fails the stream.
    ///
    /// **At least once, under `key`.** Once this returns `Ok`, the engine records that the
    /// stream's attempt applied its operations, then commits the stream; a delivery that finds
    /// the record commits without calling this again (a commit that failed, a timeout or a
    /// crash after the record). Only a crash or timeout between this returning and the record
    /// being written (one DynamoDB write) calls it again for the same operations, with the
    /// same [`ApplyKey::key`]: make the operations idempotent under it.
    async fn apply_operations(
        &self,
        _ctx: &RunContext,
        _stream: &StreamSpec,
        _operations: &[Value],
        _key: &ApplyKey,
    ) -> Result<(), BoxError> {
        Ok(())
    }
}

/// The integrations a worker can run, by type.
#[derive(Clone, Default)]
pub struct Integrations(HashMap<String, Arc<dyn IntegrationService>>);

impl Integrations {
    /// No integrations.
    pub fn new() -> Self {
        Self::default()
    }
    /// Add `s`, under its [`IntegrationService::integration_type`].
    pub fn with(mut self, s: impl IntegrationService) -> Self {
        self.0.insert(s.integration_type().to_owned(), Arc::new(s));
        self
    }
    #[doc(hidden)]
    pub fn get(&self, t: &str) -> Option<&Arc<dyn IntegrationService>> {
        self.0.get(t)
    }
    #[doc(hidden)]
    pub fn names(&self) -> Vec<&str> {
        let mut n: Vec<&str> = self.0.keys().map(String::as_str).collect();
        n.sort_unstable();
        n
    }
}
