//! `cloneTemplateExport` (an integration app's install step): copy a template export into the
//! integration being installed, then mark the step completed on the integration, both through
//! integrator.io's API with the call's one-time token.
//!
//! Register it as the `installerFunction` of an install step. integrator.io calls it with
//! `{_integrationId, opts}`; the step reads
//!
//! - `opts.templateExportId` (required): the export to copy (it must be one the integration
//!   app's token may reach: the app's own template);
//! - `opts._connectionId` (optional): the connection the copy uses.
//!
//! It sends `POST /v1/exports/{templateExportId}/clone` with
//! `{"_integrationId": …, "_connectionId": …}`, then marks the integration's install step
//! whose `installerFunction` is `cloneTemplateExport` `completed: true`
//! (`GET` + `PUT /v1/integrations/{_integrationId}`), and answers
//! `{"success": true, "stepsToUpdate": [the install steps]}` so the install wizard moves on.
//!
//! A missing `_integrationId` or `templateExportId` fails before anything is sent
//! (`missing_integration`, `invalid_settings`); an API error fails the call with its
//! `integrator_*` code (a template the token may not reach: `integrator_forbidden` or
//! `integrator_not_found`), leaving the step not completed so the user can run it again.

use integrator_lambda::types::{ConnectorOptions, StepResult};
use integrator_lambda::{ExtError, ExtResult, Invocation};
use serde_json::{Map, Value};

/// The function name, also the step's `installerFunction`.
pub const NAME: &str = "cloneTemplateExport";

/// `cloneTemplateExport`: see the module docs.
pub async fn clone_template_export(
    inv: Invocation,
    options: ConnectorOptions,
) -> ExtResult<Option<StepResult>> {
    let integration = options
        .integration_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ExtError::with_code("missing_integration", "_integrationId is required."))?;
    let opts = options.opts.as_ref();
    let template = opts
        .and_then(|o| o.get("templateExportId"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            integrator_lambda::invalid_settings(
                "opts.templateExportId must name the template export to copy.",
            )
        })?;
    let mut copy = Map::new();
    copy.insert("_integrationId".into(), integration.into());
    if let Some(c) = opts
        .and_then(|o| o.get("_connectionId"))
        .and_then(Value::as_str)
    {
        copy.insert("_connectionId".into(), c.into());
    }
    let api = inv.integrator();
    let clone = api.clone_export(template, &Value::Object(copy)).await?;
    let export = clone.get("_id").and_then(Value::as_str).unwrap_or("");
    tracing::info!(
        request_id = inv.request_id(),
        integration,
        template,
        export,
        "template export cloned"
    );
    let steps = api.complete_install_step(integration, NAME).await?;
    let steps = steps
        .into_iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(ExtError::from_error)?;
    let mut result = StepResult::default();
    result.success = true;
    result.steps_to_update = Some(steps);
    Ok(Some(result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use integrator_lambda::Services;
    use integrator_lambda::outgoing::integrator::IntegratorApi;
    use integrator_lambda::outgoing::integrator::double::IntegratorDouble;
    use serde_json::json;
    use std::time::Duration;

    const TOKEN: &str = "ott-installer-0042";

    fn inv(double: &IntegratorDouble) -> Invocation {
        Invocation::for_test(NAME, Duration::from_secs(5))
            .with_services(Services::new().with_integrator(IntegratorApi::new(&double.url())))
            .with_bearer_token(TOKEN)
    }

    fn options(opts: Value) -> ConnectorOptions {
        serde_json::from_value(json!({"_integrationId": "int-1", "opts": opts})).unwrap()
    }

    #[tokio::test]
    async fn clones_the_template_into_the_integration_and_completes_the_step() {
        let double = IntegratorDouble::start(0, Some(TOKEN)).await.unwrap();
        double.answer(
            "POST",
            "/v1/exports/tmpl-9/clone",
            201,
            json!({"_id": "exp-new", "_integrationId": "int-1"}),
        );
        double.put_document(
            "/v1/integrations/int-1",
            json!({"_id": "int-1", "install": [
                {"name": "Connection", "completed": true, "installerFunction": "connect"},
                {"name": "Orders export", "completed": false, "installerFunction": NAME}
            ]}),
        );
        let out = clone_template_export(
            inv(&double),
            options(json!({"templateExportId": "tmpl-9", "_connectionId": "conn-1"})),
        )
        .await
        .unwrap()
        .unwrap();
        assert!(out.success);
        let steps = out.steps_to_update.unwrap();
        assert_eq!(steps[1]["completed"], true);
        let got: Vec<(String, String, Value)> = double
            .received()
            .into_iter()
            .map(|r| (r.method, r.path, r.body))
            .collect();
        assert_eq!(got[0].0, "POST");
        assert_eq!(got[0].1, "/v1/exports/tmpl-9/clone");
        assert_eq!(
            got[0].2,
            json!({"_integrationId": "int-1", "_connectionId": "conn-1"})
        );
        assert_eq!(
            (got[1].0.as_str(), got[1].1.as_str()),
            ("GET", "/v1/integrations/int-1")
        );
        assert_eq!(
            (got[2].0.as_str(), got[2].1.as_str()),
            ("PUT", "/v1/integrations/int-1")
        );
        let doc = double.document("/v1/integrations/int-1").unwrap();
        assert_eq!(doc["install"][1]["completed"], true);
    }

    #[tokio::test]
    async fn a_template_the_token_cannot_reach_fails_and_leaves_the_step_open() {
        let double = IntegratorDouble::start(0, Some(TOKEN)).await.unwrap();
        double.answer(
            "POST",
            "/v1/exports/other/clone",
            403,
            json!({"errors": [{"code": "forbidden", "message": "Not your resource."}]}),
        );
        let e = clone_template_export(inv(&double), options(json!({"templateExportId": "other"})))
            .await
            .unwrap_err();
        assert_eq!(e.code.as_deref(), Some("integrator_forbidden"));
        assert!(e.message.contains("forbidden: Not your resource."), "{e}");
        assert_eq!(double.received().len(), 1, "no step marked");
        let e = clone_template_export(inv(&double), options(json!({})))
            .await
            .unwrap_err();
        assert_eq!(e.code.as_deref(), Some("invalid_settings"));
        assert_eq!(
            double.received().len(),
            1,
            "nothing sent without a template"
        );
    }
}
