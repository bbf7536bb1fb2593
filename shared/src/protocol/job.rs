//! The `job` integrator.io passes to the hooks of a running flow: which job (and its parent
//! job, for a flow step) the call belongs to. The fields follow integrator.io's documented hook
//! options (`_id`, `type`, `startedAt`, `parentJob`); anything else it sends is kept in `extra`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The job a hook call belongs to (options key `job`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobContext {
    /// The job's id (`_id`): `inv.integrator().job(id)` reads it, `job_errors(id)` its errors.
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The job's type (`type`, e.g. `flow`, `export`, `import`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// When the job started (`startedAt`, as sent).
    #[serde(rename = "startedAt", default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Value>,
    /// The parent job (`parentJob`): the flow's job, for a job of one of its steps.
    #[serde(rename = "parentJob", default, skip_serializing_if = "Option::is_none")]
    pub parent_job: Option<Box<JobContext>>,
    /// Fields not modelled above, kept in the order they arrived.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl JobContext {
    /// The id of the flow's job: the parent's id when there is a parent, else this job's.
    pub fn flow_job_id(&self) -> Option<&str> {
        self.parent_job
            .as_deref()
            .and_then(|p| p.id.as_deref())
            .or(self.id.as_deref())
    }
}

#[cfg(test)]
mod tests {

    use crate::protocol::types::{PostSubmitOptions, PreSavePageOptions};
    use serde_json::json;

    #[test]
    fn job_sandbox_and_api_id_are_typed_instead_of_landing_in_extra() {
        let o: PreSavePageOptions = serde_json::from_value(json!({
            "data": [],
            "_exportId": "e1",
            "_apiId": "api-7",
            "sandbox": false,
            "job": {"_id": "j2", "type": "export", "startedAt": "2026-12-07T02:00:00.000Z",
                    "parentJob": {"_id": "j1", "type": "flow"}, "numPagesGenerated": 3},
            "somethingNew": 1
        }))
        .unwrap();
        assert_eq!(o.api_id.as_deref(), Some("api-7"));
        assert_eq!(o.sandbox, Some(false));
        let job = o.job.as_ref().unwrap();
        assert_eq!(job.id.as_deref(), Some("j2"));
        assert_eq!(job.kind.as_deref(), Some("export"));
        assert_eq!(job.flow_job_id(), Some("j1"));
        assert_eq!(job.extra["numPagesGenerated"], 3);
        assert_eq!(o.extra.keys().collect::<Vec<_>>(), ["somethingNew"]);
        // `null` is absence; a hook of an import has them too.
        let p: PostSubmitOptions =
            serde_json::from_value(json!({"job": null, "sandbox": true})).unwrap();
        assert_eq!((p.job, p.sandbox), (None, Some(true)));
        assert!(p.extra.is_empty());
    }
}
