//! DynamoDB run store (runs and their streams).

use super::{Table, applied, describe_sdk_error, is_condition_failure};
use crate::jobs::runs::*;
use crate::time::EpochMillis;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use serde_json::Value;
use std::collections::HashMap;

/// Runs and streams in the extension table (see the module docs for the items).
#[derive(Debug, Clone)]
pub struct DynamoRuns {
    table: Table,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn store_err<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> RunsError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    RunsError::Store(describe_sdk_error(e))
}

fn build_err(e: impl std::fmt::Display) -> RunsError {
    RunsError::Store(format!("request could not be built: {e}"))
}

impl DynamoRuns {
    /// The store in `table` (and its index).
    pub fn new(table: Table) -> Self {
        Self { table }
    }
    fn run_pk(id: &str) -> AttributeValue {
        s(format!("run#{id}"))
    }
    fn stream_pk(run: &str, id: &str) -> AttributeValue {
        s(format!("stream#{run}#{id}"))
    }

    fn put_stream(&self, st: &Stream) -> Result<TransactWriteItem, RunsError> {
        let put = Put::builder()
            .table_name(&self.table.name)
            .item("pk", Self::stream_pk(&st.run_id, &st.id))
            .item("run_id", s(&st.run_id))
            .item("stream_id", s(&st.id))
            .item("name", s(&st.spec.name))
            .item("params", s(st.spec.params.to_string()))
            .item("state", s(st.state.as_str()))
            .item("attempt", n(st.attempt))
            .item("retries", n(st.retries))
            .item("lease_until", n(0))
            .item("gsi1pk", s(format!("run#{}", st.run_id)))
            .item("gsi1sk", s(&st.id))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// One `TransactWriteItems`; false when one of its conditions failed (nothing written).
    /// A transaction cancelled for another reason (typically `TransactionConflict`: two
    /// streams of one run finishing at once both update the run item) is retried a few times
    /// with a short back-off, then reported as an error (the message is redelivered).
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, RunsError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        const ATTEMPTS: u32 = 5;
        for attempt in 1..=ATTEMPTS {
            let e = match self
                .table
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await
            {
                Ok(_) => return Ok(true),
                Err(e) => e,
            };
            let reasons: Vec<String> = match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => c
                    .cancellation_reasons()
                    .iter()
                    .filter_map(|r| r.code().map(str::to_owned))
                    .collect(),
                _ => return Err(store_err(&e)),
            };
            if reasons.iter().any(|r| r == "ConditionalCheckFailed") {
                return Ok(false);
            }
            if attempt == ATTEMPTS {
                return Err(RunsError::Store(format!(
                    "transaction cancelled {ATTEMPTS} times: {}",
                    reasons.join(", ")
                )));
            }
            tracing::debug!(attempt, reasons = %reasons.join(", "), "transaction cancelled; retrying");
            tokio::time::sleep(std::time::Duration::from_millis(25 * u64::from(attempt))).await;
        }
        Ok(false)
    }

    /// Whether the item `pk` carries `token` in `attr`: after a conditional write failed, this
    /// tells the write's own earlier attempt (applied, its reply lost, the SDK retried) from
    /// another writer's. One consistent `GetItem`.
    async fn wrote(&self, pk: AttributeValue, attr: &str, token: &str) -> Result<bool, RunsError> {
        let item = self.table.get(pk).await.map_err(|e| store_err(&e))?;
        Ok(item
            .as_ref()
            .and_then(|i| i.get(attr))
            .and_then(|v| v.as_s().ok())
            .is_some_and(|v| v == token))
    }

    /// A conditional write's outcome, `applied`, or — when its condition failed — whether the
    /// item carries this write's own `token` in `attr` (see [`DynamoRuns::wrote`]).
    async fn applied_or_own(
        &self,
        applied: bool,
        pk: AttributeValue,
        attr: &str,
        token: &str,
    ) -> Result<bool, RunsError> {
        if applied {
            return Ok(true);
        }
        let own = self.wrote(pk, attr, token).await?;
        if own {
            tracing::debug!(attr, "a retried write met its own earlier attempt");
        }
        Ok(own)
    }

    fn stream_from(item: &HashMap<String, AttributeValue>) -> Option<Stream> {
        let txt = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
        let num = |k: &str| -> Option<u64> { item.get(k)?.as_n().ok()?.parse().ok() };
        Some(Stream {
            run_id: txt("run_id")?,
            id: txt("stream_id")?,
            spec: StreamSpec {
                name: txt("name").unwrap_or_default(),
                params: txt("params")
                    .and_then(|p| serde_json::from_str(&p).ok())
                    .unwrap_or(Value::Null),
            },
            state: StreamState::parse(&txt("state")?)?,
            attempt: u32::try_from(num("attempt")?).ok()?,
            retries: u32::try_from(num("retries").unwrap_or(0)).ok()?,
            error: txt("error"),
            lease_until: EpochMillis(num("lease_until").unwrap_or(0)),
            applied: num("applied_attempt")
                .and_then(|a| u32::try_from(a).ok())
                .map(|a| (a, num("applied_records").unwrap_or(0))),
        })
    }

    fn run_from(item: &HashMap<String, AttributeValue>) -> Option<Run> {
        let txt = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
        let num = |k: &str| -> Option<i64> { item.get(k)?.as_n().ok()?.parse().ok() };
        Some(Run {
            id: txt("pk")?.strip_prefix("run#")?.to_owned(),
            integration: txt("integration")?,
            onboarding: item
                .get("onboarding")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
            params: txt("params")
                .and_then(|p| serde_json::from_str(&p).ok())
                .unwrap_or(Value::Null),
            state: RunState::parse(&txt("state")?)?,
            started_at: EpochMillis(u64::try_from(num("started_at")?).ok()?),
            processed_at: num("processed_at")
                .and_then(|v| u64::try_from(v).ok())
                .map(EpochMillis),
            error: txt("error"),
            pending: num("pending").unwrap_or(0),
            streams_total: num("streams_total").unwrap_or(0),
            errored_streams: num("errored_streams").unwrap_or(0),
            records: num("records").unwrap_or(0),
        })
    }
}

#[async_trait]
impl RunStore for DynamoRuns {
    async fn create_run(&self, run: &Run) -> Result<(), RunsError> {
        let token = crate::codec::random_id();
        let r = self
            .table
            .put()
            .item("pk", Self::run_pk(&run.id))
            .item("integration", s(&run.integration))
            .item("onboarding", AttributeValue::Bool(run.onboarding))
            .item("params", s(run.params.to_string()))
            .item("state", s(run.state.as_str()))
            .item("started_at", n(run.started_at.0))
            .item("pending", n(0))
            .item("streams_total", n(0))
            .item("errored_streams", n(0))
            .item("records", n(0))
            .item("created_by", s(&token))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        let applied = applied(r).map_err(|e| store_err(&e))?;
        if self
            .applied_or_own(applied, Self::run_pk(&run.id), "created_by", &token)
            .await?
        {
            Ok(())
        } else {
            Err(RunsError::Store(format!(
                "ConditionalCheckFailedException: run {} already exists",
                run.id
            )))
        }
    }

    async fn get_run(&self, id: &str) -> Result<Option<Run>, RunsError> {
        let got = self.table.get_as(Self::run_pk(id), Self::run_from).await;
        got.map_err(|e| store_err(&e))
    }

    async fn begin_run(&self, id: &str, roots: &[Stream]) -> Result<bool, RunsError> {
        let token = crate::codec::random_id();
        let begin = Update::builder()
            .table_name(&self.table.name)
            .key("pk", Self::run_pk(id))
            .update_expression(
                "SET #s = :processing, begun_by = :tok ADD pending :p, streams_total :p",
            )
            .condition_expression("#s = :pending")
            .expression_attribute_values(":tok", s(&token))
            .expression_attribute_names("#s", "state")
            .expression_attribute_values(":processing", s("processing"))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":p", n(roots.len()))
            .build()
            .map_err(build_err)?;
        let mut items = vec![TransactWriteItem::builder().update(begin).build()];
        for r in roots {
            items.push(self.put_stream(r)?);
        }
        let applied = self.transact(items).await?;
        self.applied_or_own(applied, Self::run_pk(id), "begun_by", &token)
            .await
    }

    async fn claim_stream(
        &self,
        run_id: &str,
        stream_id: &str,
        attempt: u32,
        now: EpochMillis,
    ) -> Result<Option<Stream>, RunsError> {
        let r = self
            .table
            .update(Self::stream_pk(run_id, stream_id))
            .update_expression("SET #s = :processing, lease_until = :lease, claimed_by = :tok")
            .condition_expression(
                "attempt = :a AND (#s = :pending OR (#s = :processing AND \
                 (lease_until < :now OR claimed_by = :tok)))",
            )
            // A retry whose first attempt landed finds its own token and still holds the lease.
            .expression_attribute_values(":tok", s(crate::codec::random_id()))
            .expression_attribute_names("#s", "state")
            .expression_attribute_values(":processing", s("processing"))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":a", n(attempt))
            .expression_attribute_values(":now", n(now.0))
            .expression_attribute_values(":lease", n(now.after(LEASE).0))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match r {
            Ok(out) => Ok(out.attributes().and_then(Self::stream_from)),
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(store_err(&e)),
        }
    }

    async fn mark_applied(&self, st: &Stream, records: u64) -> Result<bool, RunsError> {
        // A plain SET under the claim's condition: a retry whose first attempt landed sets the
        // same values again and still finds the stream `processing` at this attempt.
        let r = self
            .table
            .update(Self::stream_pk(&st.run_id, &st.id))
            .update_expression("SET applied_attempt = :a, applied_records = :r")
            .condition_expression("#s = :processing AND attempt = :a")
            .expression_attribute_names("#s", "state")
            .expression_attribute_values(":processing", s("processing"))
            .expression_attribute_values(":a", n(st.attempt))
            .expression_attribute_values(":r", n(records))
            .send()
            .await;
        applied(r).map_err(|e| store_err(&e))
    }

    async fn finish_stream(&self, st: &Stream, finish: &Finish) -> Result<bool, RunsError> {
        let token = crate::codec::random_id();
        let (state, error, records, children): (_, _, u64, &[Stream]) = match finish {
            Finish::Processed { records, children } => ("processed", None, *records, children),
            Finish::Errored { error } => ("error", Some(error.as_str()), 0, &[]),
        };
        let mut end = Update::builder()
            .table_name(&self.table.name)
            .key("pk", Self::stream_pk(&st.run_id, &st.id))
            .condition_expression("#s = :processing AND attempt = :a")
            .expression_attribute_names("#s", "state")
            .expression_attribute_values(":processing", s("processing"))
            .expression_attribute_values(":a", n(st.attempt))
            .expression_attribute_values(":state", s(state));
        end = match error {
            Some(e) => end
                .update_expression("SET #s = :state, #e = :error, finished_by = :tok")
                .expression_attribute_names("#e", "error")
                .expression_attribute_values(":error", s(e)),
            None => end.update_expression("SET #s = :state, finished_by = :tok"),
        };
        end = end.expression_attribute_values(":tok", s(&token));
        let mut items = vec![
            TransactWriteItem::builder()
                .update(end.build().map_err(build_err)?)
                .build(),
        ];
        for c in children {
            items.push(self.put_stream(c)?);
        }
        let counters = Update::builder()
            .table_name(&self.table.name)
            .key("pk", Self::run_pk(&st.run_id))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":p", n(children.len() as i64 - 1))
            .expression_attribute_values(":t", n(children.len()));
        let counters = if error.is_some() {
            counters
                .update_expression("ADD pending :p, streams_total :t, errored_streams :one")
                .expression_attribute_values(":one", n(1))
        } else {
            counters
                .update_expression("ADD pending :p, streams_total :t, records :r")
                .expression_attribute_values(":r", n(records))
        };
        let counters = TransactWriteItem::builder()
            .update(counters.build().map_err(build_err)?)
            .build();
        items.push(counters);
        // The stream's state, its children and the run's counters commit together; a retry
        // whose first attempt committed finds `finished_by` = this commit's token (the counters
        // were added once).
        let applied = self.transact(items).await?;
        self.applied_or_own(
            applied,
            Self::stream_pk(&st.run_id, &st.id),
            "finished_by",
            &token,
        )
        .await
    }

    async fn retry_stream(&self, st: &Stream, error: &str) -> Result<bool, RunsError> {
        let token = crate::codec::random_id();
        let r = self
            .table
            .update(Self::stream_pk(&st.run_id, &st.id))
            .update_expression(
                "SET #s = :pending, #e = :error, retried_by = :tok ADD attempt :one, retries :one",
            )
            .condition_expression("#s = :processing AND attempt = :a")
            .expression_attribute_values(":tok", s(&token))
            .expression_attribute_names("#s", "state")
            .expression_attribute_names("#e", "error")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":processing", s("processing"))
            .expression_attribute_values(":error", s(error))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":a", n(st.attempt))
            .send()
            .await;
        let applied = applied(r).map_err(|e| store_err(&e))?;
        self.applied_or_own(
            applied,
            Self::stream_pk(&st.run_id, &st.id),
            "retried_by",
            &token,
        )
        .await
    }

    async fn list_streams(&self, run_id: &str) -> Result<Vec<Stream>, RunsError> {
        // Bounded: 1,000 pages of up to 1 MB.
        self.table
            .query_index(
                &format!("run#{run_id}"),
                None,
                usize::MAX,
                1000,
                Self::stream_from,
            )
            .await
            .map_err(|e| store_err(&e))
    }

    async fn reopen_stream(&self, st: &Stream) -> Result<bool, RunsError> {
        let token = crate::codec::random_id();
        let reopen = Update::builder()
            .table_name(&self.table.name)
            .key("pk", Self::stream_pk(&st.run_id, &st.id))
            .update_expression(
                "SET #s = :pending, retries = :zero, reopened_by = :tok ADD attempt :one",
            )
            .condition_expression("#s = :was AND attempt = :a")
            .expression_attribute_values(":tok", s(&token))
            .expression_attribute_names("#s", "state")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":was", s(st.state.as_str()))
            .expression_attribute_values(":a", n(st.attempt))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(
                ":zero",
                n(if st.state == StreamState::Error {
                    0
                } else {
                    st.retries
                }),
            )
            .build()
            .map_err(build_err)?;
        let mut items = vec![TransactWriteItem::builder().update(reopen).build()];
        if st.state == StreamState::Error {
            let run = Update::builder()
                .table_name(&self.table.name)
                .key("pk", Self::run_pk(&st.run_id))
                .update_expression(
                    "SET #s = :processing REMOVE processed_at, #e ADD pending :one, errored_streams :minus",
                )
                .expression_attribute_names("#s", "state")
                .expression_attribute_names("#e", "error")
                .expression_attribute_values(":processing", s("processing"))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":minus", n(-1))
                .build()
                .map_err(build_err)?;
            items.push(TransactWriteItem::builder().update(run).build());
        }
        let applied = self.transact(items).await?;
        self.applied_or_own(
            applied,
            Self::stream_pk(&st.run_id, &st.id),
            "reopened_by",
            &token,
        )
        .await
    }

    async fn finish_run(&self, id: &str, now: EpochMillis) -> Result<Option<RunState>, RunsError> {
        let token = crate::codec::random_id();
        let Some(run) = self.get_run(id).await? else {
            return Ok(None);
        };
        let Some((state, error)) = run.ending() else {
            return Ok(None);
        };
        let mut req = self
            .table
            .update(Self::run_pk(id))
            .condition_expression("#s = :processing AND pending = :zero")
            .expression_attribute_names("#s", "state")
            .expression_attribute_values(":processing", s("processing"))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":state", s(state.as_str()))
            .expression_attribute_values(":at", n(now.0))
            .expression_attribute_values(":tok", s(&token));
        req = match error {
            Some(e) => req
                .update_expression(
                    "SET #s = :state, processed_at = :at, #e = :error, ended_by = :tok",
                )
                .expression_attribute_names("#e", "error")
                .expression_attribute_values(":error", s(e)),
            None => req.update_expression("SET #s = :state, processed_at = :at, ended_by = :tok"),
        };
        let applied = applied(req.send().await).map_err(|e| store_err(&e))?;
        if self
            .applied_or_own(applied, Self::run_pk(id), "ended_by", &token)
            .await?
        {
            tracing::info!(run_id = id, state = state.as_str(), "run finished");
            Ok(Some(state))
        } else {
            Ok(None)
        }
    }
}
