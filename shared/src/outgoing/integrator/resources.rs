//! The typed endpoints of [`Integrator`]: exports, imports, flows, state, connections,
//! integrations, jobs and `tokenInfo`. Resource documents are returned as JSON values
//! (integrator.io's documents are large and vary by application); state values and the token's
//! info are typed through serde. Ids and keys are percent-encoded into one path segment each.

use super::{Integrator, IntegratorError, segment};
use http::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `GET /v1/tokenInfo`: whose token it is and what it may reach.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The user the token acts for.
    #[serde(rename = "_userId", default)]
    pub user_id: Option<String>,
    /// `*` for a full-access token, else what it is limited to.
    #[serde(default)]
    pub scope: Option<Value>,
    /// Any other field integrator.io returns.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

/// One step of an integration app's `install` array (the fields its installer reads and
/// writes; the others are kept).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InstallStep {
    /// The step's name, as the installer page shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether the step is done.
    #[serde(default)]
    pub completed: bool,
    /// The function integrator.io calls for the step.
    #[serde(
        rename = "installerFunction",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub installer_function: Option<String>,
    /// Every other field, unchanged.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

/// The state keys of the account (`/state/{key}`) or of one resource
/// (`/{resourceType}/{id}/state/{key}`): values are any serde type.
#[derive(Debug)]
pub struct ResourceState<'a> {
    client: &'a Integrator,
    prefix: String,
}

impl ResourceState<'_> {
    fn path(&self, key: &str) -> String {
        format!("{}/state/{}", self.prefix, segment(key))
    }
    /// The value under `key`, or `None` when there is none (404).
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, IntegratorError> {
        match self.client.get(&self.path(key)).send::<T>().await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }
    /// Store `value` under `key` (replacing any value).
    pub async fn put<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), IntegratorError> {
        self.client
            .request(Method::PUT, &self.path(key))
            .json(value)
            .send_raw()
            .await
            .map(drop)
    }
    /// Delete `key` (a key that is not there is not an error).
    pub async fn delete(&self, key: &str) -> Result<(), IntegratorError> {
        match self
            .client
            .request(Method::DELETE, &self.path(key))
            .send_raw()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Integrator {
    /// `GET /v1/tokenInfo`.
    pub async fn token_info(&self) -> Result<TokenInfo, IntegratorError> {
        self.get("/tokenInfo").send().await
    }

    /// `GET /v1/exports/{id}`.
    pub async fn export(&self, id: &str) -> Result<Value, IntegratorError> {
        self.get(&format!("/exports/{}", segment(id))).send().await
    }
    /// `POST /v1/exports/{id}/invoke` with `{"data": data, "settings": settings}` (each left
    /// out when `null`): the export's answer.
    pub async fn invoke_export(
        &self,
        id: &str,
        data: &Value,
        settings: &Value,
    ) -> Result<Value, IntegratorError> {
        let mut body = serde_json::Map::new();
        if !data.is_null() {
            body.insert("data".into(), data.clone());
        }
        if !settings.is_null() {
            body.insert("settings".into(), settings.clone());
        }
        self.request(Method::POST, &format!("/exports/{}/invoke", segment(id)))
            .json(&body)
            .send()
            .await
    }
    /// `POST /v1/exports/{id}/clone` with `body` (e.g. the `_integrationId` and
    /// `_connectionId` of the copy): the new export.
    pub async fn clone_export(&self, id: &str, body: &Value) -> Result<Value, IntegratorError> {
        self.request(Method::POST, &format!("/exports/{}/clone", segment(id)))
            .json(body)
            .send()
            .await
    }

    /// `GET /v1/imports/{id}`.
    pub async fn import(&self, id: &str) -> Result<Value, IntegratorError> {
        self.get(&format!("/imports/{}", segment(id))).send().await
    }
    /// `POST /v1/imports/{id}/invoke` with the records as a JSON array: the import's answer.
    pub async fn invoke_import<R: Serialize>(
        &self,
        id: &str,
        records: &[R],
    ) -> Result<Value, IntegratorError> {
        self.request(Method::POST, &format!("/imports/{}/invoke", segment(id)))
            .json(records)
            .send()
            .await
    }

    /// `GET /v1/flows/{id}`.
    pub async fn flow(&self, id: &str) -> Result<Value, IntegratorError> {
        self.get(&format!("/flows/{}", segment(id))).send().await
    }
    /// `POST /v1/flows/{id}/run`: the run is queued, not immediate (201, the job).
    pub async fn run_flow(&self, id: &str) -> Result<Value, IntegratorError> {
        self.request(Method::POST, &format!("/flows/{}/run", segment(id)))
            .send()
            .await
    }

    /// The account's state keys (`/v1/state/{key}`).
    pub fn state(&self) -> ResourceState<'_> {
        ResourceState {
            client: self,
            prefix: String::new(),
        }
    }
    /// The state keys of one resource (`/v1/{resource_type}/{id}/state/{key}`, e.g.
    /// `resource_state("imports", id)`).
    pub fn resource_state(&self, resource_type: &str, id: &str) -> ResourceState<'_> {
        ResourceState {
            client: self,
            prefix: format!("/{}/{}", segment(resource_type), segment(id)),
        }
    }

    /// `GET /v1/connections/{id}`.
    pub async fn connection(&self, id: &str) -> Result<Value, IntegratorError> {
        self.get(&format!("/connections/{}", segment(id)))
            .send()
            .await
    }
    /// `GET /v1/connections/{id}/ping`.
    pub async fn ping_connection(&self, id: &str) -> Result<Value, IntegratorError> {
        self.get(&format!("/connections/{}/ping", segment(id)))
            .send()
            .await
    }
    /// `POST /v1/connections/{id}/export` (a virtual export: `body` describes it).
    pub async fn virtual_export(&self, id: &str, body: &Value) -> Result<Value, IntegratorError> {
        self.request(
            Method::POST,
            &format!("/connections/{}/export", segment(id)),
        )
        .json(body)
        .send()
        .await
    }
    /// `POST /v1/connections/{id}/import` (a virtual import: `body` describes it and its data).
    pub async fn virtual_import(&self, id: &str, body: &Value) -> Result<Value, IntegratorError> {
        self.request(
            Method::POST,
            &format!("/connections/{}/import", segment(id)),
        )
        .json(body)
        .send()
        .await
    }

    /// `GET /v1/integrations/{id}`.
    pub async fn integration(&self, id: &str) -> Result<Value, IntegratorError> {
        self.get(&format!("/integrations/{}", segment(id)))
            .send()
            .await
    }
    /// Replace the integration's `settings`: `GET`, then `PUT` of the document with the new
    /// settings. The updated integration.
    pub async fn update_integration_settings(
        &self,
        id: &str,
        settings: &Value,
    ) -> Result<Value, IntegratorError> {
        let mut doc = self.integration(id).await?;
        let Some(obj) = doc.as_object_mut() else {
            return Err(self.not_a_document(id));
        };
        obj.insert("settings".into(), settings.clone());
        self.put_integration(id, &doc).await
    }
    /// Mark an integration app's install step completed (the step whose `installerFunction`,
    /// else `name`, is `step`): `GET`, then `PUT` of the document. The updated `install` array;
    /// `integrator_not_found` when no step matches.
    pub async fn complete_install_step(
        &self,
        id: &str,
        step: &str,
    ) -> Result<Vec<InstallStep>, IntegratorError> {
        let mut doc = self.integration(id).await?;
        let path = format!("/v1/integrations/{}", segment(id));
        let Some(obj) = doc.as_object_mut() else {
            return Err(self.not_a_document(id));
        };
        let mut steps: Vec<InstallStep> = serde_json::from_value(
            obj.get("install").cloned().unwrap_or(json!([])),
        )
        .map_err(|e| IntegratorError::InvalidResponse {
            method: "GET".into(),
            path: path.clone(),
            detail: format!("install: {e}"),
            too_large: false,
        })?;
        let found = steps.iter_mut().find(|s| {
            s.installer_function.as_deref() == Some(step)
                || (s.installer_function.is_none() && s.name.as_deref() == Some(step))
        });
        let Some(found) = found else {
            return Err(IntegratorError::Status {
                method: "GET".into(),
                path,
                status: 404,
                errors: vec![super::ApiError {
                    code: "install_step_not_found".into(),
                    message: format!("the integration has no install step {step}"),
                }],
                body: String::new(),
            });
        };
        found.completed = true;
        let install = serde_json::to_value(&steps)
            .map_err(|e| IntegratorError::InvalidRequest(e.to_string()))?;
        obj.insert("install".into(), install);
        self.put_integration(id, &doc).await?;
        Ok(steps)
    }
    async fn put_integration(&self, id: &str, doc: &Value) -> Result<Value, IntegratorError> {
        self.request(Method::PUT, &format!("/integrations/{}", segment(id)))
            .json(doc)
            .send()
            .await
    }
    fn not_a_document(&self, id: &str) -> IntegratorError {
        IntegratorError::InvalidResponse {
            method: "GET".into(),
            path: format!("/v1/integrations/{}", segment(id)),
            detail: "the integration is not a JSON object".into(),
            too_large: false,
        }
    }

    /// `GET /v1/jobs/{id}`.
    pub async fn job(&self, id: &str) -> Result<Value, IntegratorError> {
        self.get(&format!("/jobs/{}", segment(id))).send().await
    }
    /// `GET /v1/jobs/{id}/joberrors`.
    pub async fn job_errors(&self, id: &str) -> Result<Value, IntegratorError> {
        self.get(&format!("/jobs/{}/joberrors", segment(id)))
            .send()
            .await
    }
}
