//! Options and results of the flow hooks integrator.io calls around exports and imports
//! (preSavePage, preMap, postMap, postSubmit, postResponseMap, postAggregate) and of webhooks.

use super::*;

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
