//! Options and results of wrapper functions: integrator.io calls them in place of an HTTP
//! connection (ping, export, import).

use super::*;

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
