//! DynamoDB job store (deferred invocations).

use super::{Table, applied, describe_sdk_error, is_condition_failure};
use crate::jobs::deferred::*;
use crate::time::{EpochMillis, EpochSeconds};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use std::collections::HashMap;

/// Job items in the extension table: `pk = job#<id>`, `version`, `state`, `due_at` (N, ms),
/// `body`, `expires_at`; stored jobs also `gsi1pk = jobs#scheduled`, `gsi1sk` = the due time
/// as 15 zero-padded digits, so the index lists them in due order. One `PutItem` to schedule,
/// one `Query` + one conditional `UpdateItem` per job to tick, one `GetItem` + one
/// `DeleteItem` per run.
#[derive(Debug, Clone)]
pub struct DynamoJobs {
    table: Table,
}

fn store_err<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> JobError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    JobError::Store(describe_sdk_error(e))
}

fn due_sort_key(due: EpochMillis) -> String {
    format!("{:015}", due.0)
}

impl DynamoJobs {
    /// The store in `table` (and its index).
    pub fn new(table: Table) -> Self {
        Self { table }
    }
    fn pk(id: &str) -> AttributeValue {
        AttributeValue::S(format!("{PK_PREFIX}{id}"))
    }
    fn job_from(item: &HashMap<String, AttributeValue>) -> Option<Job> {
        let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
        Some(Job {
            id: s("pk")?.strip_prefix(PK_PREFIX)?.to_owned(),
            version: s("version")?,
            state: JobState::parse(&s("state")?)?,
            due_at: EpochMillis(item.get("due_at")?.as_n().ok()?.parse().ok()?),
            body: s("body")?,
            lease_until: item
                .get("lease_until")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .map(EpochMillis),
        })
    }
}

#[async_trait]
impl JobStore for DynamoJobs {
    async fn put(&self, job: &Job, expires_at: EpochSeconds) -> Result<(), JobError> {
        let mut req = self
            .table
            .put()
            .item("pk", Self::pk(&job.id))
            .item("version", AttributeValue::S(job.version.clone()))
            .item("state", AttributeValue::S(job.state.as_str().into()))
            .item("due_at", AttributeValue::N(job.due_at.0.to_string()))
            .item("body", AttributeValue::S(job.body.clone()))
            .item("expires_at", AttributeValue::N(expires_at.0.to_string()));
        if let Some(l) = job.lease_until {
            req = req.item("lease_until", AttributeValue::N(l.0.to_string()));
        }
        if matches!(job.state, JobState::Scheduled | JobState::Sending) {
            req = req
                .item("gsi1pk", AttributeValue::S(DUE_PARTITION.into()))
                .item("gsi1sk", AttributeValue::S(due_sort_key(job.index_time())));
        }
        req.send().await.map(|_| ()).map_err(|e| store_err(&e))
    }

    async fn get(&self, id: &str) -> Result<Option<Job>, JobError> {
        let got = self.table.get_as(Self::pk(id), Self::job_from).await;
        got.map_err(|e| store_err(&e))
    }

    async fn delete(&self, id: &str, version: Option<&str>) -> Result<bool, JobError> {
        let mut req = self
            .table
            .delete(Self::pk(id))
            .return_values(ReturnValue::AllOld);
        if let Some(v) = version {
            req = req
                .condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::S(v.into()));
        }
        match req.send().await {
            Ok(out) => Ok(out.attributes().is_some_and(|a| !a.is_empty())),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(store_err(&e)),
        }
    }

    async fn due(&self, until: EpochMillis, limit: usize) -> Result<Vec<Job>, JobError> {
        // Bounded: at most `limit` jobs, at most 20 pages.
        let scheduled = |item: &HashMap<String, AttributeValue>| {
            Self::job_from(item)
                .filter(|j| matches!(j.state, JobState::Scheduled | JobState::Sending))
        };
        let until = due_sort_key(until);
        self.table
            .query_index(DUE_PARTITION, Some(&until), limit, 20, scheduled)
            .await
            .map_err(|e| store_err(&e))
    }

    async fn claim(
        &self,
        id: &str,
        version: &str,
        now: EpochMillis,
        lease_until: EpochMillis,
    ) -> Result<bool, JobError> {
        // The lease carries this claim's token: when the write lands but its reply is lost, the
        // SDK's retry finds the job `sending` under its own lease and still claims it (instead
        // of leaving the job to wait for its own lease to run out).
        let token = crate::codec::random_id();
        let r = self
            .table
            .update(Self::pk(id))
            .update_expression(
                "SET #s = :sending, lease_until = :lease, gsi1sk = :sk, lease_token = :tok",
            )
            .condition_expression(
                "version = :v AND (#s = :scheduled OR (#s = :sending AND \
                 (lease_until <= :now OR lease_token = :tok)))",
            )
            .expression_attribute_values(":tok", AttributeValue::S(token))
            .expression_attribute_names("#s", "state")
            .expression_attribute_values(":sending", s(JobState::Sending))
            .expression_attribute_values(":scheduled", s(JobState::Scheduled))
            .expression_attribute_values(":v", AttributeValue::S(version.into()))
            .expression_attribute_values(":now", AttributeValue::N(now.0.to_string()))
            .expression_attribute_values(":lease", AttributeValue::N(lease_until.0.to_string()))
            .expression_attribute_values(":sk", AttributeValue::S(due_sort_key(lease_until)))
            .send()
            .await;
        applied(r).map_err(|e| store_err(&e))
    }

    async fn sent(&self, id: &str, version: &str) -> Result<(), JobError> {
        let r = self
            .table
            .update(Self::pk(id))
            .update_expression("SET #s = :queued REMOVE gsi1pk, gsi1sk, lease_until, lease_token")
            .condition_expression("#s = :sending AND version = :v")
            .expression_attribute_names("#s", "state")
            .expression_attribute_values(":queued", s(JobState::Queued))
            .expression_attribute_values(":sending", s(JobState::Sending))
            .expression_attribute_values(":v", AttributeValue::S(version.into()))
            .send()
            .await;
        applied(r).map(|_| ()).map_err(|e| store_err(&e))
    }

    async fn unclaim(&self, job: &Job) -> Result<(), JobError> {
        let r = self
            .table
            .update(Self::pk(&job.id))
            .update_expression("SET #s = :scheduled, gsi1sk = :sk REMOVE lease_until, lease_token")
            .condition_expression("#s = :sending AND version = :v")
            .expression_attribute_names("#s", "state")
            .expression_attribute_values(":sending", s(JobState::Sending))
            .expression_attribute_values(":scheduled", s(JobState::Scheduled))
            .expression_attribute_values(":v", AttributeValue::S(job.version.clone()))
            .expression_attribute_values(":sk", AttributeValue::S(due_sort_key(job.due_at)))
            .send()
            .await;
        applied(r).map(|_| ()).map_err(|e| store_err(&e))
    }

    async fn fail(&self, id: &str, version: &str) -> Result<(), JobError> {
        let r = self
            .table
            .update(Self::pk(id))
            .update_expression("SET #s = :failed REMOVE gsi1pk, gsi1sk, lease_until, lease_token")
            .condition_expression("version = :v")
            .expression_attribute_names("#s", "state")
            .expression_attribute_values(":failed", s(JobState::Failed))
            .expression_attribute_values(":v", AttributeValue::S(version.into()))
            .send()
            .await;
        applied(r).map(|_| ()).map_err(|e| store_err(&e))
    }
}

/// A job state as an attribute value.
fn s(state: JobState) -> AttributeValue {
    AttributeValue::S(state.as_str().into())
}
