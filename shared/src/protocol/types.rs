//! Typed options and results of every extension function integrator.io calls (the 2.0 functions
//! and the 1.0 connector functions).
//!
//! Every struct keeps what it does not model in `extra` (in arrival order), so nothing
//! integrator.io adds is lost, and every field tolerates `null` or absence. Structs are
//! `#[non_exhaustive]`: build results with `Default` (or the constructors) and set fields.

use super::Record;
pub use super::job::JobContext;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::fmt;

fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// Decides which fields are left out when a struct is written back.
#[doc(hidden)]
pub trait Skip {
    fn skip(&self) -> bool {
        false
    }
}
impl<T> Skip for Option<T> {
    fn skip(&self) -> bool {
        self.is_none()
    }
}
impl<T> Skip for Vec<T> {}
impl Skip for bool {}
impl Skip for u16 {}
impl Skip for String {}
impl Skip for Value {}
impl Skip for Record {}
impl Skip for Map<String, Value> {}
impl Skip for WrapperConnection {}

/// The one-time `bearerToken` integrator.io passes to every function. Its `Debug` output is
/// redacted so that logging the options never leaks it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BearerToken(String);

impl BearerToken {
    /// The token itself, for calling integrator.io's API.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken([redacted])")
    }
}

macro_rules! wire_struct {
    ($(#[$doc:meta])* $name:ident { $( $(#[$fdoc:meta])* $field:ident : $ty:ty = $key:literal ),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[non_exhaustive]
        pub struct $name {
            $(
                $(#[$fdoc])*
                #[doc = ""]
                #[doc = concat!("Wire key: `", $key, "`.")]
                #[serde(rename = $key, default, deserialize_with = "nullable", skip_serializing_if = "Skip::skip")]
                pub $field: $ty,
            )*
            /// Fields not modelled above, kept in the order they arrived.
            #[serde(flatten)]
            pub extra: Map<String, Value>,
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Shared pieces

wire_struct! {
    /// One error as integrator.io shows it on a record or a page.
    RecordError {
        code: Option<String> = "code",
        message: Option<String> = "message",
        source: Option<String> = "source",
    }
}

impl RecordError {
    /// An error with this code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: Some(code.into()),
            message: Some(message.into()),
            ..Default::default()
        }
    }
}

wire_struct! {
    /// One element of a preMap/postMap result: `{data}` keeps the record, `{data, errors}` keeps
    /// it and logs errors, `{errors}` fails it, `{}` ignores it.
    RecordResult {
        data: Option<Record> = "data",
        errors: Option<Vec<RecordError>> = "errors",
    }
}

impl RecordResult {
    /// Keep the record, as `data`.
    pub fn keep(data: impl Into<Record>) -> Self {
        Self {
            data: Some(data.into()),
            ..Default::default()
        }
    }
    /// Fail the record with these errors.
    pub fn fail(errors: Vec<RecordError>) -> Self {
        Self {
            errors: Some(errors),
            ..Default::default()
        }
    }
    /// Ignore the record (`{}`): it goes no further, without an error.
    pub fn ignore() -> Self {
        Self::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Hooks

wire_struct! {
    /// preSavePage: an export page before it is saved.
    PreSavePageOptions {
        data: Vec<Record> = "data",
        errors: Vec<Value> = "errors",
        files: Option<Vec<Value>> = "files",
        retry_data: Option<Map<String, Value>> = "retryData",
        export_id: Option<String> = "_exportId",
        connection_id: Option<String> = "_connectionId",
        flow_id: Option<String> = "_flowId",
        integration_id: Option<String> = "_integrationId",
        parent_integration_id: Option<String> = "_parentIntegrationId",
        page_index: Option<u64> = "pageIndex",
        /// Passed through as sent (ISO string or epoch number); never coerced.
        last_export_date_time: Option<Value> = "lastExportDateTime",
        current_export_date_time: Option<Value> = "currentExportDateTime",
        settings: Option<Value> = "settings",
        configuration: Option<Value> = "configuration",
        test_mode: Option<bool> = "testMode",
        preview: Option<bool> = "preview",
        /// The job the call belongs to (integrator.io's hook options).
        job: Option<JobContext> = "job",
        sandbox: Option<bool> = "sandbox",
        /// The API (integrator.io "My APIs") the export runs for, when it does.
        api_id: Option<String> = "_apiId",
        bearer_token: Option<BearerToken> = "bearerToken",
    }
}

wire_struct! {
    /// preSavePage result.
    PreSavePageResult {
        data: Vec<Record> = "data",
        errors: Vec<Value> = "errors",
        abort: bool = "abort",
        new_errors_and_retry_data: Vec<Value> = "newErrorsAndRetryData",
    }
}

impl PreSavePageResult {
    /// The page's records and its errors; no abort, no retry data.
    pub fn new(data: Vec<Record>, errors: Vec<Value>) -> Self {
        Self {
            data,
            errors,
            ..Default::default()
        }
    }
}

wire_struct! {
    /// preMap: import records before mapping. Result: one [`RecordResult`] per record.
    PreMapOptions {
        data: Vec<Record> = "data",
        import_id: Option<String> = "_importId",
        connection_id: Option<String> = "_connectionId",
        flow_id: Option<String> = "_flowId",
        integration_id: Option<String> = "_integrationId",
        parent_integration_id: Option<String> = "_parentIntegrationId",
        settings: Option<Value> = "settings",
        configuration: Option<Value> = "configuration",
        test_mode: Option<bool> = "testMode",
        /// The job the call belongs to (integrator.io's hook options).
        job: Option<JobContext> = "job",
        sandbox: Option<bool> = "sandbox",
        bearer_token: Option<BearerToken> = "bearerToken",
    }
}

wire_struct! {
    /// postMap: records after mapping. Result: one [`RecordResult`] per `postMapData` record.
    PostMapOptions {
        pre_map_data: Vec<Record> = "preMapData",
        post_map_data: Vec<Record> = "postMapData",
        import_id: Option<String> = "_importId",
        connection_id: Option<String> = "_connectionId",
        flow_id: Option<String> = "_flowId",
        integration_id: Option<String> = "_integrationId",
        parent_integration_id: Option<String> = "_parentIntegrationId",
        settings: Option<Value> = "settings",
        configuration: Option<Value> = "configuration",
        test_mode: Option<bool> = "testMode",
        /// The job the call belongs to (integrator.io's hook options).
        job: Option<JobContext> = "job",
        sandbox: Option<bool> = "sandbox",
        bearer_token: Option<BearerToken> = "bearerToken",
    }
}

wire_struct! {
    /// One submit response (postSubmit input and output, import wrapper output).
    SubmitResponse {
        status_code: Option<u16> = "statusCode",
        errors: Option<Vec<RecordError>> = "errors",
        ignored: Option<bool> = "ignored",
        id: Option<Value> = "id",
        json: Option<Value> = "_json",
        data_uri: Option<String> = "dataURI",
    }
}

impl SubmitResponse {
    /// The record was submitted: status 200 with the id it got.
    pub fn ok(id: impl Into<Value>) -> Self {
        Self {
            status_code: Some(200),
            id: Some(id.into()),
            ignored: Some(false),
            ..Default::default()
        }
    }
    /// The record failed with this status and these errors.
    pub fn failed(status_code: u16, errors: Vec<RecordError>) -> Self {
        Self {
            status_code: Some(status_code),
            errors: Some(errors),
            ignored: Some(false),
            ..Default::default()
        }
    }
}

wire_struct! {
    /// postSubmit: after records were submitted. Result: the `responseData` array, same length.
    PostSubmitOptions {
        pre_map_data: Vec<Record> = "preMapData",
        post_map_data: Vec<Record> = "postMapData",
        response_data: Vec<SubmitResponse> = "responseData",
        import_id: Option<String> = "_importId",
        connection_id: Option<String> = "_connectionId",
        flow_id: Option<String> = "_flowId",
        integration_id: Option<String> = "_integrationId",
        parent_integration_id: Option<String> = "_parentIntegrationId",
        settings: Option<Value> = "settings",
        configuration: Option<Value> = "configuration",
        test_mode: Option<bool> = "testMode",
        /// The job the call belongs to (integrator.io's hook options).
        job: Option<JobContext> = "job",
        sandbox: Option<bool> = "sandbox",
        bearer_token: Option<BearerToken> = "bearerToken",
    }
}

wire_struct! {
    /// postResponseMap: after response mapping. Result: `postResponseMapData`, same length.
    PostResponseMapOptions {
        post_response_map_data: Vec<Record> = "postResponseMapData",
        response_data: Vec<Record> = "responseData",
        one_to_many: Option<bool> = "oneToMany",
        path_to_many: Option<Value> = "pathToMany",
        export_id: Option<String> = "_exportId",
        import_id: Option<String> = "_importId",
        connection_id: Option<String> = "_connectionId",
        flow_id: Option<String> = "_flowId",
        integration_id: Option<String> = "_integrationId",
        parent_integration_id: Option<String> = "_parentIntegrationId",
        settings: Option<Value> = "settings",
        test_mode: Option<bool> = "testMode",
        /// The job the call belongs to (integrator.io's hook options).
        job: Option<JobContext> = "job",
        sandbox: Option<bool> = "sandbox",
        bearer_token: Option<BearerToken> = "bearerToken",
    }
}

wire_struct! {
    /// postAggregate: after an aggregated file was uploaded. No result.
    PostAggregateOptions {
        post_aggregate_data: Map<String, Value> = "postAggregateData",
        import_id: Option<String> = "_importId",
        connection_id: Option<String> = "_connectionId",
        flow_id: Option<String> = "_flowId",
        integration_id: Option<String> = "_integrationId",
        settings: Option<Value> = "settings",
        configuration: Option<Value> = "configuration",
        test_mode: Option<bool> = "testMode",
        /// The job the call belongs to (integrator.io's hook options).
        job: Option<JobContext> = "job",
        sandbox: Option<bool> = "sandbox",
        bearer_token: Option<BearerToken> = "bearerToken",
    }
}

wire_struct! {
    /// A webhook function's input: one event accepted by `POST /incoming/{endpoint}`, delivered
    /// by the queue worker. No result (the sender was answered when the event was queued).
    WebhookOptions {
        /// The endpoint that accepted it.
        endpoint: String = "endpoint",
        /// The event, flattened to dotted keys (`{"order.id": 7, "lines.0.sku": "A-1"}`).
        event: Map<String, Value> = "event",
        /// The forwarded request headers (the endpoint's `forwardHeaders`, never credentials).
        headers: Map<String, Value> = "headers",
        /// The endpoint's dedup key (hex), the same on every copy of the event; `None` when the
        /// endpoint does not deduplicate.
        dedup_key: Option<String> = "dedupKey",
        /// How the sender authenticated: `{"type":"none"|"hmac"|"jwt", …claims}`.
        auth: Option<Value> = "auth",
        /// When the endpoint accepted it (RFC 3339, UTC, milliseconds).
        received_at: Option<String> = "receivedAt",
        /// The incoming request's id.
        request_id: Option<String> = "requestId",
    }
}

// ---------------------------------------------------------------------------------------------
// Wrappers

wire_struct! {
    /// The wrapper connection: `encrypted` and `unencrypted` fields as configured.
    WrapperConnection {
        id: Option<String> = "_id",
        encrypted: Map<String, Value> = "encrypted",
        unencrypted: Map<String, Value> = "unencrypted",
    }
}

wire_struct! {
    /// ping ("Test connection").
    PingOptions {
        connection: WrapperConnection = "connection",
        export_id: Option<String> = "_exportId",
        import_id: Option<String> = "_importId",
        bearer_token: Option<BearerToken> = "bearerToken",
    }
}

wire_struct! {
    /// ping result: `{statusCode: 200}` or `{statusCode: 401, errors: [...]}`.
    PingResult {
        status_code: u16 = "statusCode",
        errors: Option<Vec<RecordError>> = "errors",
    }
}

impl PingResult {
    /// The connection works: `{statusCode: 200}`.
    pub fn ok() -> Self {
        Self {
            status_code: 200,
            ..Default::default()
        }
    }
    /// The connection is refused: `{statusCode: 401, errors}`.
    pub fn unauthorized(errors: Vec<RecordError>) -> Self {
        Self {
            status_code: 401,
            errors: Some(errors),
            ..Default::default()
        }
    }
}

wire_struct! {
    /// export wrapper: called page after page until `lastPage`.
    ExportOptions {
        connection: WrapperConnection = "connection",
        /// `delta`, `once`, `test`, or absent for "export everything".
        export_type: Option<String> = "type",
        delta: Option<Value> = "delta",
        once: Option<Value> = "once",
        test: Option<Value> = "test",
        /// What the previous page returned as `state` (absent on the first call).
        state: Option<Value> = "state",
        /// The upstream page when the export runs as a page processor.
        data: Option<Vec<Record>> = "data",
        configuration: Option<Value> = "configuration",
        settings: Option<Value> = "settings",
        export_id: Option<String> = "_exportId",
        flow_id: Option<String> = "_flowId",
        integration_id: Option<String> = "_integrationId",
        bearer_token: Option<BearerToken> = "bearerToken",
    }
}

wire_struct! {
    /// export wrapper result.
    ExportResult {
        data: Vec<Value> = "data",
        last_page: bool = "lastPage",
        state: Option<Value> = "state",
        errors: Vec<RecordError> = "errors",
        connection_offline: Option<bool> = "connectionOffline",
    }
}

wire_struct! {
    /// import wrapper: write records. Result: one [`SubmitResponse`] per `postMapData` record.
    ImportOptions {
        connection: WrapperConnection = "connection",
        pre_map_data: Vec<Record> = "preMapData",
        post_map_data: Vec<Record> = "postMapData",
        configuration: Option<Value> = "configuration",
        settings: Option<Value> = "settings",
        import_id: Option<String> = "_importId",
        flow_id: Option<String> = "_flowId",
        integration_id: Option<String> = "_integrationId",
        bearer_token: Option<BearerToken> = "bearerToken",
    }
}

// ---------------------------------------------------------------------------------------------
// Integration apps: framework 1.0 connector functions

wire_struct! {
    /// installer / uninstaller / update / preUninstall and 1.0 settings functions.
    ConnectorOptions {
        integration_id: Option<String> = "_integrationId",
        connector_id: Option<String> = "_connectorId",
        /// License and step information (`opts`).
        opts: Option<Value> = "opts",
        bearer_token: Option<BearerToken> = "bearerToken",
    }
}

wire_struct! {
    /// Result of an install/uninstall step: `{success, stepsToUpdate}`.
    StepResult {
        success: bool = "success",
        steps_to_update: Option<Vec<Value>> = "stepsToUpdate",
    }
}

wire_struct! {
    /// persistSettings.
    PersistSettingsOptions {
        integration_id: Option<String> = "_integrationId",
        opts: Option<Value> = "opts",
        pending: Map<String, Value> = "pending",
        bearer_token: Option<BearerToken> = "bearerToken",
    }
}

wire_struct! {
    /// persistSettings result: `{success, pending}`.
    PersistSettingsResult {
        success: bool = "success",
        pending: Option<Value> = "pending",
    }
}

wire_struct! {
    /// getMappingMetadata.
    MappingMetadataOptions {
        integration_id: Option<String> = "_integrationId",
        version: Option<Value> = "version",
        bearer_token: Option<BearerToken> = "bearerToken",
    }
}

// ---------------------------------------------------------------------------------------------
// Integration apps: framework 2.0 functions

wire_struct! {
    /// formInit: build the settings form.
    FormInitOptions {
        resource: Option<Value> = "resource",
        parent_resource: Option<Value> = "parentResource",
        grandparent_resource: Option<Value> = "grandparentResource",
        license: Option<Value> = "license",
        parent_license: Option<Value> = "parentLicense",
        bearer_token: Option<BearerToken> = "bearerToken",
    }
}

wire_struct! {
    /// preSave: the resource about to be saved; return the resource to save.
    PreSaveOptions {
        new_resource: Option<Value> = "newResource",
        old_resource: Option<Value> = "oldResource",
        bearer_token: Option<BearerToken> = "bearerToken",
    }
}

wire_struct! {
    /// step: an install/uninstall step of a 2.0 integration app. No result.
    InstallStepOptions {
        form_submission: Option<Value> = "formSubmission",
        connection_id: Option<String> = "_connectionId",
        resource: Option<Value> = "resource",
        parent_resource: Option<Value> = "parentResource",
        license: Option<Value> = "license",
        parent_license: Option<Value> = "parentLicense",
        bearer_token: Option<BearerToken> = "bearerToken",
    }
}

wire_struct! {
    /// initChild: return the child integration to create.
    InitChildOptions {
        parent_integration: Option<Value> = "parentIntegration",
        parent_license: Option<Value> = "parentLicense",
        bearer_token: Option<BearerToken> = "bearerToken",
    }
}

wire_struct! {
    /// update (2.0: `resource`, `license`; 1.0: `_integrationId`, `opts`). No result.
    UpdateOptions {
        resource: Option<Value> = "resource",
        license: Option<Value> = "license",
        integration_id: Option<String> = "_integrationId",
        opts: Option<Value> = "opts",
        bearer_token: Option<BearerToken> = "bearerToken",
    }
}

wire_struct! {
    /// changeEdition (2.0: from/to edition; 1.0 settings: `opts`). No result.
    ChangeEditionOptions {
        from_edition: Option<Value> = "fromEdition",
        to_edition: Option<Value> = "toEdition",
        integration: Option<Value> = "integration",
        license: Option<Value> = "license",
        integration_id: Option<String> = "_integrationId",
        opts: Option<Value> = "opts",
        bearer_token: Option<BearerToken> = "bearerToken",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_kept_in_order_and_nulls_tolerated() {
        let o: PreMapOptions = serde_json::from_value(json!({
            "data": [{"a":1}], "zeta": 1, "_importId": "i1", "alpha": {"x": null}, "settings": null
        }))
        .unwrap();
        assert_eq!(o.data.len(), 1);
        assert_eq!(o.import_id.as_deref(), Some("i1"));
        assert_eq!(o.extra.keys().collect::<Vec<_>>(), ["zeta", "alpha"]);
        let n: PreMapOptions = serde_json::from_value(json!({"data": null})).unwrap();
        assert!(n.data.is_empty());
    }

    #[test]
    fn export_date_times_pass_through_as_sent() {
        for sent in [
            json!("2026-12-07T01:02:03.456Z"),
            json!(1765069323456u64),
            json!(null),
        ] {
            let body =
                json!({"data": [], "lastExportDateTime": sent, "currentExportDateTime": sent});
            let o: PreSavePageOptions = serde_json::from_value(body.clone()).unwrap();
            assert_eq!(
                o.last_export_date_time.as_ref().unwrap_or(&Value::Null),
                &sent
            );
            let back = serde_json::to_value(&o).unwrap();
            assert_eq!(back["lastExportDateTime"], sent, "{sent}");
            assert_eq!(back["currentExportDateTime"], sent, "{sent}");
        }
    }

    #[test]
    fn bearer_token_never_prints() {
        let o: PingOptions = serde_json::from_value(json!({"bearerToken": "ott-secret"})).unwrap();
        assert!(!format!("{o:?}").contains("ott-secret"));
        assert_eq!(o.bearer_token.unwrap().expose(), "ott-secret");
    }

    #[test]
    fn results_serialize_without_absent_fields() {
        let r = vec![RecordResult::keep(json!({"a":1})), RecordResult::ignore()];
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"[{"data":{"a":1}},{}]"#
        );
        assert_eq!(
            serde_json::to_string(&PingResult::ok()).unwrap(),
            r#"{"statusCode":200}"#
        );
    }
}
