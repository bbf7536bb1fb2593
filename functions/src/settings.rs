//! **Integration-app settings functions.**
//!
//! | function | kind | called when |
//! |---|---|---|
//! | `settingsForm` | formInit (2.0) | the settings page opens: return the form to show |
//! | `validateSettings` | preSave (2.0) | settings are saved: return the resource to save, or fail |
//! | `createChild` | initChild (2.0) | a child integration is added: return the child to create |
//! | `changeEdition` | changeEdition | the license edition changes |
//! | `persistSettings` | persistSettings (1.0) | 1.0 settings are saved: apply `pending` |
//! | `refreshMetadata` | refreshMetadata (1.0) | a field's "refresh" button is clicked |
//! | `mappingMetadata` | getMappingMetadata | the mapper opens: which fields are required/locked |
//!
//! 1.0 functions are also reachable in the `settings` namespace; 2.0 ones at the top level.

use integrator_lambda::types::{
    ChangeEditionOptions, ConnectorOptions, FormInitOptions, InitChildOptions,
    MappingMetadataOptions, PersistSettingsOptions, PersistSettingsResult, PreSaveOptions,
};
use integrator_lambda::{ExtError, ExtResult, Invocation, Module};
use serde_json::{Map, Value, json};

/// The import external id [`mapping_metadata`] describes. Use your imports' `externalId`s.
pub const SAMPLE_IMPORT_EXTERNAL_ID: &str = "customer_import";

/// The functions of this extension point: `settingsForm`, `validateSettings`, `createChild`,
/// `changeEdition`, `persistSettings`, `refreshMetadata`, `mappingMetadata`.
pub fn module() -> Module {
    let mut m = Module::new();
    m.form_init("settingsForm", settings_form)
        .pre_save("validateSettings", validate_settings)
        .init_child("createChild", create_child)
        .change_edition("changeEdition", change_edition)
        .persist_settings("persistSettings", persist_settings)
        .refresh_metadata("refreshMetadata", refresh_metadata)
        .get_mapping_metadata("mappingMetadata", mapping_metadata);
    m
}

/// `settingsForm`: the settings form of a resource.
///
/// Returns the form stored on the resource (`resource.settingsForm.form`) when there is one;
/// otherwise a default form with a single `pageSize` field whose default is the resource's
/// current `settings.pageSize` (or 10). Forms are `{fieldMap, layout}` objects.
pub async fn settings_form(_inv: Invocation, options: FormInitOptions) -> ExtResult<Value> {
    let resource = options.resource.as_ref();
    if let Some(form @ Value::Object(_)) = resource
        .and_then(|r| r.get("settingsForm"))
        .and_then(|f| f.get("form"))
    {
        return Ok(form.clone());
    }
    let page_size = resource
        .and_then(|r| r.get("settings"))
        .and_then(|s| s.get("pageSize"))
        .filter(|v| v.is_number())
        .cloned()
        .unwrap_or(json!(10));
    Ok(json!({
        "fieldMap": {
            "pageSize": {
                "id": "pageSize",
                "name": "pageSize",
                "type": "text",
                "inputType": "number",
                "label": "Page size",
                "helpText": "Records per page, 1 to 1000.",
                "required": true,
                "defaultValue": page_size
            }
        },
        "layout": {"fields": ["pageSize"]}
    }))
}

/// `validateSettings`: check settings before they are saved.
///
/// Returns `newResource` unchanged when `newResource.settings.pageSize` is absent, `null` or an
/// integer from 1 to 1000; otherwise fails with `invalid_settings`, which integrator.io shows
/// to the user and the save is refused. Also fails with `invalid_settings` when there is no
/// `newResource`.
pub async fn validate_settings(_inv: Invocation, options: PreSaveOptions) -> ExtResult<Value> {
    let Some(resource) = options.new_resource else {
        return Err(ExtError::with_code(
            "invalid_settings",
            "newResource is required.",
        ));
    };
    match resource.get("settings").and_then(|s| s.get("pageSize")) {
        None | Some(Value::Null) => Ok(resource),
        Some(v) if v.as_u64().is_some_and(|n| (1..=1000).contains(&n)) => Ok(resource),
        Some(_) => Err(ExtError::with_code(
            "invalid_settings",
            "Page size must be a whole number from 1 to 1000.",
        )),
    }
}

/// `createChild`: the child integration to create under a parent integration app (e.g. one
/// per store or subsidiary): `{"name": "<parent name> child", "installSteps": []}`. A parent
/// without a name gives `"Integration child"`.
pub async fn create_child(_inv: Invocation, options: InitChildOptions) -> ExtResult<Value> {
    let parent = options
        .parent_integration
        .as_ref()
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("Integration");
    Ok(json!({"name": format!("{parent} child"), "installSteps": []}))
}

/// `changeEdition`: the license moved to another edition (2.0: `fromEdition` → `toEdition`;
/// 1.0: in `opts`). Enable or disable the edition's features here. Logs the change; no result.
pub async fn change_edition(inv: Invocation, options: ChangeEditionOptions) -> ExtResult<()> {
    let opts = options.opts.as_ref();
    let edition = |direct: Option<&Value>, key: &str| {
        direct
            .or_else(|| opts.and_then(|o| o.get(key)))
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    let from = edition(options.from_edition.as_ref(), "fromEdition");
    let to = edition(options.to_edition.as_ref(), "toEdition");
    tracing::info!(
        request_id = inv.request_id(),
        integration = options.integration_id.as_deref().unwrap_or(""),
        from = %from,
        to = %to,
        "edition changed"
    );
    Ok(())
}

/// `persistSettings`: save the changed 1.0 settings. `pending` maps each changed setting to its
/// new value; answer `{success: true, pending}` with the values actually applied (here, all of
/// them as received). Apply them to your resources before answering.
pub async fn persist_settings(
    _inv: Invocation,
    options: PersistSettingsOptions,
) -> ExtResult<PersistSettingsResult> {
    let mut result = PersistSettingsResult::default();
    result.success = true;
    result.pending = Some(Value::Object(options.pending));
    Ok(result)
}

/// `refreshMetadata`: re-read a setting's metadata (e.g. the list of values of a select) and
/// return the field with the new metadata. `opts` carries the field; this example returns it
/// as it came (or `{}` when absent) — fill in the fresh values from your application.
pub async fn refresh_metadata(_inv: Invocation, options: ConnectorOptions) -> ExtResult<Value> {
    Ok(options.opts.unwrap_or_else(|| json!({})))
}

/// `mappingMetadata`: tell the mapper which fields of each import must be mapped
/// (`requiredGenerateFields`) and which mappings the user may not change
/// (`nonEditableGenerateFields`), keyed by the import's external id; entries with
/// `generateList` apply to a sublist.
pub async fn mapping_metadata(
    _inv: Invocation,
    _options: MappingMetadataOptions,
) -> ExtResult<Map<String, Value>> {
    let mut out = Map::new();
    out.insert(
        SAMPLE_IMPORT_EXTERNAL_ID.to_owned(),
        json!([
            {
                "requiredGenerateFields": ["id", "email", "name"],
                "nonEditableGenerateFields": ["id"]
            },
            {
                "generateList": "addresses",
                "requiredGenerateFields": ["country"],
                "nonEditableGenerateFields": []
            }
        ]),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn inv(name: &str) -> Invocation {
        Invocation::for_test(name, Duration::from_secs(5))
    }

    #[tokio::test]
    async fn settings_form_prefers_the_stored_form() {
        let o: FormInitOptions = serde_json::from_value(json!({
            "resource": {"settingsForm": {"form": {"fieldMap": {}, "layout": {"fields": []}}}}
        }))
        .unwrap();
        assert_eq!(
            settings_form(inv("settingsForm"), o).await,
            Ok(json!({"fieldMap": {}, "layout": {"fields": []}}))
        );

        let o: FormInitOptions =
            serde_json::from_value(json!({"resource": {"settings": {"pageSize": 50}}})).unwrap();
        let form = settings_form(inv("settingsForm"), o).await.unwrap();
        assert_eq!(form["fieldMap"]["pageSize"]["defaultValue"], json!(50));
        assert_eq!(form["layout"], json!({"fields": ["pageSize"]}));

        let o: FormInitOptions = serde_json::from_value(json!({})).unwrap();
        let form = settings_form(inv("settingsForm"), o).await.unwrap();
        assert_eq!(form["fieldMap"]["pageSize"]["defaultValue"], json!(10));
    }

    #[tokio::test]
    async fn validate_settings_checks_page_size() {
        for ok in [
            json!({"name": "x"}),
            json!({"settings": {"pageSize": 1}}),
            json!({"settings": {"pageSize": 1000, "other": true}}),
            json!({"settings": {"pageSize": null}}),
        ] {
            let o: PreSaveOptions =
                serde_json::from_value(json!({ "newResource": ok, "oldResource": {} })).unwrap();
            assert_eq!(validate_settings(inv("validateSettings"), o).await, Ok(ok));
        }
        for bad in [json!(0), json!(1001), json!(2.5), json!("10"), json!(-1)] {
            let o: PreSaveOptions =
                serde_json::from_value(json!({ "newResource": {"settings": {"pageSize": bad}} }))
                    .unwrap();
            assert_eq!(
                validate_settings(inv("validateSettings"), o).await,
                Err(ExtError::with_code(
                    "invalid_settings",
                    "Page size must be a whole number from 1 to 1000."
                ))
            );
        }
        let o: PreSaveOptions = serde_json::from_value(json!({})).unwrap();
        let err = validate_settings(inv("validateSettings"), o)
            .await
            .unwrap_err();
        assert_eq!(err.code.as_deref(), Some("invalid_settings"));
    }

    #[tokio::test]
    async fn create_child_names_the_child_after_the_parent() {
        let o: InitChildOptions =
            serde_json::from_value(json!({"parentIntegration": {"name": "Shopify - NetSuite"}}))
                .unwrap();
        assert_eq!(
            create_child(inv("createChild"), o).await,
            Ok(json!({"name": "Shopify - NetSuite child", "installSteps": []}))
        );
        let o: InitChildOptions = serde_json::from_value(json!({})).unwrap();
        assert_eq!(
            create_child(inv("createChild"), o).await,
            Ok(json!({"name": "Integration child", "installSteps": []}))
        );
    }

    #[tokio::test]
    async fn change_edition_returns_nothing() {
        let o: ChangeEditionOptions =
            serde_json::from_value(json!({"fromEdition": "starter", "toEdition": "premium"}))
                .unwrap();
        assert_eq!(change_edition(inv("changeEdition"), o).await, Ok(()));
    }

    #[tokio::test]
    async fn persist_settings_echoes_pending() {
        let o: PersistSettingsOptions = serde_json::from_value(json!({
            "_integrationId": "int1",
            "pending": {"fieldA": 1, "fieldB": "x"}
        }))
        .unwrap();
        let out = persist_settings(inv("persistSettings"), o).await.unwrap();
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"success":true,"pending":{"fieldA":1,"fieldB":"x"}}"#
        );
    }

    #[tokio::test]
    async fn refresh_metadata_returns_opts_or_empty() {
        let o: ConnectorOptions =
            serde_json::from_value(json!({"opts": {"field": "currency", "options": []}})).unwrap();
        assert_eq!(
            refresh_metadata(inv("refreshMetadata"), o).await,
            Ok(json!({"field": "currency", "options": []}))
        );
        let o: ConnectorOptions = serde_json::from_value(json!({})).unwrap();
        assert_eq!(
            refresh_metadata(inv("refreshMetadata"), o).await,
            Ok(json!({}))
        );
    }

    #[tokio::test]
    async fn mapping_metadata_describes_the_sample_import() {
        let o: MappingMetadataOptions =
            serde_json::from_value(json!({"_integrationId": "int1"})).unwrap();
        let out = mapping_metadata(inv("mappingMetadata"), o).await.unwrap();
        assert_eq!(
            Value::Object(out),
            json!({"customer_import": [
                {"requiredGenerateFields": ["id", "email", "name"], "nonEditableGenerateFields": ["id"]},
                {"generateList": "addresses", "requiredGenerateFields": ["country"], "nonEditableGenerateFields": []}
            ]})
        );
    }
}
