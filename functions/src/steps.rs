//! **Integration-app install, uninstall and update functions.**
//!
//! Framework 1.0 (SmartConnectors) calls these in the `installer` / `uninstaller` namespaces
//! with `{_integrationId, _connectorId, opts}`; framework 2.0 calls them at the top level. The
//! typed registrations below put each function in both places.
//!
//! | function | kind | called when |
//! |---|---|---|
//! | `installConnector` | installer | the user starts installing (the connector's `installerFunction`) |
//! | `runInstallStep` | installer | the user runs an install step (the step's `installerFunction`) |
//! | `uninstallStep` | uninstaller | the user runs an uninstall step (the step's `uninstallerFunction`) |
//! | `uninstallConnector` | uninstaller | the last step of uninstalling (the connector's `uninstallerFunction`) |
//! | `updateIntegration` | update | the connector owner pushes a new version (the connector's `updateFunction`) |
//! | `installStep` | 2.0 step | a 2.0 integration app's install/uninstall step, with the step's form |
//! | `cloneTemplateExport` | installer | an install step that copies a template export through `inv.integrator()` ([`crate::clone_export`]) |

use integrator_lambda::types::{ConnectorOptions, InstallStepOptions, StepResult, UpdateOptions};
use integrator_lambda::{ExtError, ExtResult, Invocation, Module};
use serde_json::{Value, json};

/// The functions of this extension point: `installConnector`, `runInstallStep`,
/// `uninstallStep`, `uninstallConnector`, `updateIntegration`, `installStep`,
/// `cloneTemplateExport`.
pub fn module() -> Module {
    let mut m = Module::new();
    m.installer("installConnector", install_connector)
        .installer("runInstallStep", run_install_step)
        .uninstaller("uninstallStep", uninstall_step)
        .uninstaller("uninstallConnector", uninstall_connector)
        .update("updateIntegration", update_integration)
        .step("installStep", install_step)
        .installer(
            crate::clone_export::NAME,
            crate::clone_export::clone_template_export,
        );
    m
}

/// `installConnector`: the connector installer. integrator.io has created the integration and
/// attached the license; this is where you create its resources (connections, exports,
/// imports, flows) with the one-time `bearerToken` and write the install steps on the
/// integration. No result is expected.
///
/// Fails with `missing_integration` when `_integrationId` is absent, since nothing can be
/// installed without it.
pub async fn install_connector(
    inv: Invocation,
    options: ConnectorOptions,
) -> ExtResult<Option<StepResult>> {
    lifecycle(&inv, &options, "installing connector")
}

/// `runInstallStep`: an install step. Do the step's work, then answer
/// `{success: true, stepsToUpdate}` with the step marked `completed: true` so the install
/// wizard moves on. See [`mark_step_completed`] for how the step is found in `opts`.
pub async fn run_install_step(
    _inv: Invocation,
    options: ConnectorOptions,
) -> ExtResult<Option<StepResult>> {
    let steps = mark_step_completed(options.opts.as_ref())?;
    Ok(Some(step_result(steps)))
}

/// `uninstallStep`: an uninstall step; removes what the matching install step created and
/// answers like [`run_install_step`], marking the step completed.
pub async fn uninstall_step(
    inv: Invocation,
    options: ConnectorOptions,
) -> ExtResult<Option<StepResult>> {
    run_install_step(inv, options).await
}

/// `uninstallConnector`: the last uninstall function. Delete what the steps left behind; once
/// it returns, integrator.io deletes the integration and frees the license. No result.
///
/// Fails with `missing_integration` when `_integrationId` is absent.
pub async fn uninstall_connector(
    inv: Invocation,
    options: ConnectorOptions,
) -> ExtResult<Option<StepResult>> {
    lifecycle(&inv, &options, "uninstalling connector")
}

/// The example's install and uninstall: check the integration id and log what happens.
fn lifecycle(
    inv: &Invocation,
    options: &ConnectorOptions,
    what: &str,
) -> ExtResult<Option<StepResult>> {
    let integration = require_integration(options.integration_id.as_deref())?;
    tracing::info!(
        request_id = inv.request_id(),
        integration,
        connector = options.connector_id.as_deref().unwrap_or(""),
        "{what}"
    );
    Ok(None)
}

/// `updateIntegration`: bring an installed integration up to the connector's new version
/// (add flows, change mappings, …). Called with `_integrationId`/`opts` (1.0) or
/// `resource`/`license` (2.0). No result; logs which integration and version it updated.
pub async fn update_integration(inv: Invocation, options: UpdateOptions) -> ExtResult<()> {
    let resource = options.resource.as_ref();
    let integration = options
        .integration_id
        .as_deref()
        .or_else(|| resource.and_then(|r| r.get("_id")).and_then(Value::as_str))
        .unwrap_or("");
    let version = resource
        .and_then(|r| r.get("version"))
        .or_else(|| options.opts.as_ref().and_then(|o| o.get("version")))
        .map(Value::to_string)
        .unwrap_or_default();
    tracing::info!(
        request_id = inv.request_id(),
        integration,
        version = %version,
        "updating integration"
    );
    Ok(())
}

/// `installStep`: a framework 2.0 install (or uninstall) step. When the step shows a form,
/// its answers arrive in `formSubmission`, which must then be an object; anything else fails
/// with `invalid_form`. No result.
pub async fn install_step(inv: Invocation, options: InstallStepOptions) -> ExtResult<()> {
    let fields = match &options.form_submission {
        None => 0,
        Some(Value::Object(form)) => form.len(),
        Some(_) => {
            return Err(ExtError::with_code(
                "invalid_form",
                "formSubmission must be an object of form field values.",
            ));
        }
    };
    tracing::info!(
        request_id = inv.request_id(),
        connection = options.connection_id.as_deref().unwrap_or(""),
        form_fields = fields,
        "install step"
    );
    Ok(())
}

fn require_integration(id: Option<&str>) -> ExtResult<&str> {
    id.filter(|s| !s.is_empty())
        .ok_or_else(|| ExtError::with_code("missing_integration", "_integrationId is required."))
}

fn step_result(steps: Vec<Value>) -> StepResult {
    let mut result = StepResult::default();
    result.success = true;
    result.steps_to_update = Some(steps);
    result
}

/// The install steps to send back as `stepsToUpdate`, with the current step completed.
///
/// The step is named by `opts.stepName`, `opts.step` (a string) or `opts.step.name`.
///
/// - With `opts.steps` (the integration's steps, `[{name, completed, ...}]`): returns all of
///   them with the named step — or, when no name is given, the first step not yet completed —
///   set to `completed: true`. A name that matches no step fails with `unknown_step`.
/// - Without `opts.steps`: returns `[{"name": <name>, "completed": true}]`; with no name either,
///   fails with `missing_step`.
pub fn mark_step_completed(opts: Option<&Value>) -> ExtResult<Vec<Value>> {
    let name = opts.and_then(|o| {
        o.get("stepName")
            .and_then(Value::as_str)
            .or_else(|| o.get("step").and_then(Value::as_str))
            .or_else(|| o.get("step")?.get("name")?.as_str())
    });
    let Some(Value::Array(steps)) = opts.and_then(|o| o.get("steps")) else {
        return match name {
            Some(name) => Ok(vec![json!({"name": name, "completed": true})]),
            None => Err(ExtError::with_code(
                "missing_step",
                "opts must name the step (stepName or step) or list the steps (steps).",
            )),
        };
    };
    let mut steps = steps.clone();
    let target = match name {
        Some(name) => steps
            .iter()
            .position(|s| s.get("name").and_then(Value::as_str) == Some(name))
            .ok_or_else(|| {
                ExtError::with_code("unknown_step", format!("No install step is named {name}."))
            })
            .map(Some)?,
        None => steps
            .iter()
            .position(|s| s.get("completed").and_then(Value::as_bool) != Some(true)),
    };
    if let Some(Value::Object(step)) = target.and_then(|i| steps.get_mut(i)) {
        step.insert("completed".into(), Value::Bool(true));
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn inv(name: &str) -> Invocation {
        Invocation::for_test(name, Duration::from_secs(5))
    }

    fn connector(v: Value) -> ConnectorOptions {
        serde_json::from_value(v).unwrap()
    }

    #[tokio::test]
    async fn connector_installer_and_uninstaller_need_an_integration() {
        let ok = connector(json!({"_integrationId": "int1", "_connectorId": "c1", "opts": {}}));
        assert_eq!(
            install_connector(inv("installConnector"), ok.clone()).await,
            Ok(None)
        );
        assert_eq!(
            uninstall_connector(inv("uninstallConnector"), ok).await,
            Ok(None)
        );
        let err = install_connector(inv("installConnector"), connector(json!({"opts": {}})))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            ExtError::with_code("missing_integration", "_integrationId is required.")
        );
    }

    #[tokio::test]
    async fn install_step_marks_the_named_step_completed() {
        let o = connector(json!({
            "_integrationId": "int1",
            "opts": {
                "stepName": "Configure NetSuite",
                "steps": [
                    {"name": "Install bundle", "completed": true},
                    {"name": "Configure NetSuite", "completed": false, "installerFunction": "runInstallStep"},
                    {"name": "Configure Shopify", "completed": false}
                ]
            }
        }));
        let out = run_install_step(inv("runInstallStep"), o).await.unwrap();
        assert_eq!(
            serde_json::to_value(out).unwrap(),
            json!({"success": true, "stepsToUpdate": [
                {"name": "Install bundle", "completed": true},
                {"name": "Configure NetSuite", "completed": true, "installerFunction": "runInstallStep"},
                {"name": "Configure Shopify", "completed": false}
            ]})
        );
    }

    #[tokio::test]
    async fn steps_without_a_name_or_list() {
        let first_open = mark_step_completed(Some(&json!({"steps": [
            {"name": "a", "completed": true}, {"name": "b"}, {"name": "c"}
        ]})))
        .unwrap();
        assert_eq!(
            first_open,
            vec![
                json!({"name": "a", "completed": true}),
                json!({"name": "b", "completed": true}),
                json!({"name": "c"})
            ]
        );
        let out = uninstall_step(
            inv("uninstallStep"),
            connector(json!({"opts": {"step": {"name": "Remove flows"}}})),
        )
        .await
        .unwrap();
        assert_eq!(
            serde_json::to_value(out).unwrap(),
            json!({"success": true, "stepsToUpdate": [{"name": "Remove flows", "completed": true}]})
        );
        let err = run_install_step(inv("runInstallStep"), connector(json!({"opts": {}})))
            .await
            .unwrap_err();
        assert_eq!(err.code.as_deref(), Some("missing_step"));
        let err = run_install_step(
            inv("runInstallStep"),
            connector(json!({"opts": {"step": "x", "steps": [{"name": "y"}]}})),
        )
        .await
        .unwrap_err();
        assert_eq!(
            err,
            ExtError::with_code("unknown_step", "No install step is named x.")
        );
    }

    #[tokio::test]
    async fn update_returns_nothing() {
        let o: UpdateOptions =
            serde_json::from_value(json!({"resource": {"_id": "int1", "version": "1.2.0"}}))
                .unwrap();
        assert_eq!(
            update_integration(inv("updateIntegration"), o).await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn install_step_validates_the_form() {
        for ok in [
            json!({}),
            json!({"formSubmission": {"region": "eu"}}),
            json!({"formSubmission": null}),
        ] {
            let o: InstallStepOptions = serde_json::from_value(ok).unwrap();
            assert_eq!(install_step(inv("installStep"), o).await, Ok(()));
        }
        let o: InstallStepOptions =
            serde_json::from_value(json!({"formSubmission": "region=eu"})).unwrap();
        assert_eq!(
            install_step(inv("installStep"), o).await,
            Err(ExtError::with_code(
                "invalid_form",
                "formSubmission must be an object of form field values."
            ))
        );
    }
}
