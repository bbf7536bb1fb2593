//! Options and results of integration apps' functions: framework 1.0 connector functions
//! (installer, uninstaller, update, settings) and framework 2.0 functions (install and update
//! steps, settings forms).

use super::*;

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
