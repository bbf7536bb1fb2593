//! # functions
//!
//! Example integrator.io extension functions, one module per extension point, each hosted by
//! its own Lambda binary (`src/bin/<name>.rs`) and all together by the local `serve` binary.
//!
//! Every module exposes `module()`, the [`Module`] registering its functions under the names
//! integrator.io users type in the hook/wrapper/settings fields:
//!
//! | module | binary | functions |
//! |---|---|---|
//! | [`pre_save_page`] | `pre-save-page` | `dropEmptyRecords`, `dropDuplicates` |
//! | [`pre_map`] | `pre-map` | `flattenRecords`, `enrichRecords` ([`enrich_records`]: a CRM look-up over `inv.http()` and `inv.cache()`) |
//! | [`post_map`] | `post-map` | `normalizeFields`, `stampSource` |
//! | [`post_submit`] | `post-submit` | `tagFailures`, `rememberSubmitted` ([`remember_submitted`]: import state through `inv.integrator()`) |
//! | [`post_response_map`] | `post-response-map` | `mergeResponse` |
//! | [`post_aggregate`] | `post-aggregate` | `logAggregate` |
//! | [`export`] | `export` | `pagedExport` |
//! | [`import`] | `import` | `upsertRecords` |
//! | [`ping`] | `ping` | `checkConnection` |
//! | [`steps`] | `steps` | `installConnector`, `runInstallStep`, `uninstallStep`, `uninstallConnector`, `updateIntegration`, `installStep`, `cloneTemplateExport` ([`clone_export`]: an install step through `inv.integrator()`) |
//! | [`settings`] | `settings` | `settingsForm`, `validateSettings`, `createChild`, `changeEdition`, `persistSettings`, `refreshMetadata`, `mappingMetadata` |
//! | [`webhooks`] | `worker` (and `serve`) | `logEvent` (webhook: run for each event of an endpoint naming it) |
//! | [`diagnostics`] | `serve` only | `panicDemo`, `sleepDemo` |
//! | [`incoming`] | `incoming` (and `serve`) | `POST /incoming/{endpoint}` webhooks; default endpoint `demo` |
//! | [`integrations`] | `worker` (and `serve`) | runs and streams: the `paged-numbers` integration |
//! | `integrator_lambda::utilities()` | `worker`, `tick` (and `serve`) | `scheduleInvocation`, `cancelInvocation`, `tick`, `startRun`, `continueRun`, `runStatus` |
//!
//! To add a function: write `async fn f(inv: Invocation, options: <Point>Options) ->
//! ExtResult<<Result>>` in the module of its extension point, register it in that module's
//! `module()`, and add a unit test calling it directly with [`Invocation::for_test`].
//!
//! [`Invocation::for_test`]: integrator_lambda::Invocation::for_test

use integrator_lambda::Module;

pub mod clone_export;
pub mod diagnostics;
pub mod enrich_records;
pub mod export;
pub mod fields;
pub mod import;
pub mod incoming;
pub mod integrations;
pub mod ping;
pub mod post_aggregate;
pub mod post_map;
pub mod post_response_map;
pub mod post_submit;
pub mod pre_map;
pub mod pre_save_page;
pub mod remember_submitted;
pub mod settings;
pub mod steps;
pub mod webhooks;

/// Every function of every extension point, plus [`diagnostics`]: what the local all-in-one
/// server (`serve`) hosts. Function names are unique across modules; a duplicate would be
/// reported as a start-up error.
pub fn all() -> Module {
    let mut m = Module::new();
    for part in [
        pre_save_page::module(),
        pre_map::module(),
        post_map::module(),
        post_submit::module(),
        post_response_map::module(),
        post_aggregate::module(),
        export::module(),
        import::module(),
        ping::module(),
        steps::module(),
        settings::module(),
        webhooks::module(),
        diagnostics::module(),
    ] {
        m.merge(part);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use integrator_lambda::dispatch::{CallRequest, Extension, Reply, Stack};
    use integrator_lambda::protocol::envelope::Envelope;
    use serde_json::{Value, json};

    #[test]
    fn all_registers_every_function_once() {
        let m = all();
        assert!(m.duplicates().is_empty(), "{:?}", m.duplicates());
        assert_eq!(
            m.function_names(),
            [
                "changeEdition",
                "checkConnection",
                "cloneTemplateExport",
                "createChild",
                "dropDuplicates",
                "dropEmptyRecords",
                "enrichRecords",
                "flattenRecords",
                "hooks.dropDuplicates",
                "hooks.dropEmptyRecords",
                "hooks.enrichRecords",
                "hooks.flattenRecords",
                "hooks.logAggregate",
                "hooks.mergeResponse",
                "hooks.normalizeFields",
                "hooks.rememberSubmitted",
                "hooks.stampSource",
                "hooks.tagFailures",
                "installConnector",
                "installStep",
                "installer.cloneTemplateExport",
                "installer.installConnector",
                "installer.runInstallStep",
                "installer.updateIntegration",
                "logAggregate",
                "mappingMetadata",
                "mergeResponse",
                "normalizeFields",
                "pagedExport",
                "panicDemo",
                "persistSettings",
                "refreshMetadata",
                "rememberSubmitted",
                "runInstallStep",
                "settings.changeEdition",
                "settings.mappingMetadata",
                "settings.persistSettings",
                "settings.refreshMetadata",
                "settingsForm",
                "sleepDemo",
                "stampSource",
                "tagFailures",
                "uninstallConnector",
                "uninstallStep",
                "uninstaller.uninstallConnector",
                "uninstaller.uninstallStep",
                "updateIntegration",
                "upsertRecords",
                "validateSettings",
                "webhooks.logEvent",
                "wrappers.checkConnection",
                "wrappers.pagedExport",
                "wrappers.upsertRecords",
            ]
        );
    }

    async fn call(body: Value) -> Result<Reply, Value> {
        let ext = Extension::builder().diy(all()).build().unwrap();
        ext.call(CallRequest {
            envelope: Envelope::from_body(body),
            stack: Stack::Http,
            request_id: "test".into(),
            trace_id: None,
            deadline: None,
        })
        .await
        .map_err(|errors| serde_json::to_value(errors).unwrap())
    }

    #[tokio::test]
    async fn dispatches_by_namespace_and_top_level() {
        let options = json!({"data": [{"a": {"b": 1}}]});
        for body in [
            json!({"diy": true, "type": "hook", "function": "flattenRecords", "options": options}),
            json!({"diy": true, "function": "flattenRecords", "options": options}),
        ] {
            assert_eq!(
                call(body).await,
                Ok(Reply::Json(r#"[{"data":{"a.b":1}}]"#.into()))
            );
        }
    }

    #[tokio::test]
    async fn diagnostics_are_reachable_and_panics_are_contained() {
        assert_eq!(
            call(json!({"diy": true, "function": "sleepDemo", "options": {"ms": 1}})).await,
            Ok(Reply::Json(r#"{"sleptMs":1}"#.into()))
        );
        let errors = call(json!({"diy": true, "function": "panicDemo", "options": {"x": 1}}))
            .await
            .unwrap_err();
        let text = errors.to_string();
        assert!(text.contains("panicDemo was asked to panic"), "{text}");
    }
}

/// The README's Rust examples, compiled (and run) as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;

/// The Rust examples of docs/writing-functions.md, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/writing-functions.md")]
pub struct WritingFunctionsExamples;

/// The Rust examples of docs/integrator-api.md, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/integrator-api.md")]
pub struct IntegratorApiExamples;

/// The Rust examples of docs/deploy-and-operate.md, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/deploy-and-operate.md")]
pub struct DeployAndOperateExamples;
