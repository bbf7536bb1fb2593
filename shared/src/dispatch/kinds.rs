//! The extension-function kinds of integrator.io, their namespaces and their contracts.
//!
//! Each kind fixes the typed options a function receives, the result it returns, where it is
//! registered (its framework-1.0 namespaces, plus the 2.0 top level), and the result contract
//! integrator.io relies on but Node's framework never checks (one result per record). A broken
//! contract becomes a 422 `invalid_extension_response` instead of a confusing failure later in
//! the flow.

use super::checks::{Checks, RecordKind, Rejected, interleave, split};
use super::handler::{BoxFuture, CallFailure, ExtResult, Handler, IntoReply, Invocation, Reply};
use crate::protocol::options::PageField;
use crate::protocol::types::*;
use crate::protocol::{Options, Record};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

/// One extension-function kind.
pub trait FunctionKind: Send + Sync + 'static {
    /// What the function receives ([`crate::types`]).
    type Options: DeserializeOwned + Send + 'static;
    /// What the function returns.
    type Output: IntoReply;
    /// The function kind as integrator.io documents it (`preMap`, `export`, …).
    const NAME: &'static str;
    /// Framework-1.0 namespaces the function is registered in.
    const NAMESPACES: &'static [&'static str];
    /// Whether it is also registered at the module's top level (framework 2.0).
    const TOP_LEVEL: bool = true;

    /// The number of results the input requires, and a description of where it comes from.
    fn expected_len(_options: &Self::Options) -> Option<(usize, &'static str)> {
        None
    }
    /// The number of results produced.
    fn produced_len(_output: &Self::Output) -> Option<usize> {
        None
    }
    /// Read the options. Kinds that carry pages name their `Vec<Record>` fields (`pages = [..]`
    /// below), which are read as records that stay text ([`Options::deserialize_pages`]).
    fn read_options(options: Options) -> Result<Self::Options, serde_json::Error> {
        options.deserialize()
    }
    /// The options' pages (the fields read as records that stay text).
    fn pages(_options: &Self::Options) -> Vec<&[Record]> {
        Vec::new()
    }
}

macro_rules! kind {
    ($(#[$doc:meta])* $name:ident, $label:literal, $opts:ty => $out:ty, [$($ns:literal),*] $(, top = $top:expr)?
     $(, expect = |$o:ident| $exp:expr, $what:literal)? $(, pages = [$($field:ident: $page:literal),*])?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;
        impl FunctionKind for $name {
            type Options = $opts;
            type Output = $out;
            const NAME: &'static str = $label;
            const NAMESPACES: &'static [&'static str] = &[$($ns),*];
            $(const TOP_LEVEL: bool = $top;)?
            $(
            fn expected_len($o: &Self::Options) -> Option<(usize, &'static str)> {
                Some(($exp, $what))
            }
            fn produced_len(out: &Self::Output) -> Option<usize> {
                Some(out.len())
            }
            )?
            $(
            fn read_options(options: Options) -> Result<Self::Options, serde_json::Error> {
                options.deserialize_pages(&[$($page),*], |o: &mut Self::Options, key, records| {
                    match key {
                        $($page => PageField::fill(&mut o.$field, records),)*
                        _ => {}
                    }
                })
            }
            fn pages(o: &Self::Options) -> Vec<&[Record]> {
                vec![$(PageField::records(&o.$field)),*]
            }
            )?
        }
    };
}

kind!(/// preSavePage hook.
    PreSavePage, "preSavePage", PreSavePageOptions => PreSavePageResult, ["hooks"], pages = [data: "data"]);
kind!(/// preMap hook: one result per `data` record.
    PreMap, "preMap", PreMapOptions => Vec<RecordResult>, ["hooks"],
    expect = |o| o.data.len(), "options.data", pages = [data: "data"]);
kind!(/// postMap hook: one result per `postMapData` record.
    PostMap, "postMap", PostMapOptions => Vec<RecordResult>, ["hooks"],
    expect = |o| o.post_map_data.len(), "options.postMapData", pages = [pre_map_data: "preMapData", post_map_data: "postMapData"]);
kind!(/// postSubmit hook: the `responseData` array back, same length.
    PostSubmit, "postSubmit", PostSubmitOptions => Vec<SubmitResponse>, ["hooks"],
    expect = |o| o.response_data.len(), "options.responseData", pages = [pre_map_data: "preMapData", post_map_data: "postMapData"]);
kind!(/// postResponseMap hook: `postResponseMapData` back, same length.
    PostResponseMap, "postResponseMap", PostResponseMapOptions => Vec<Record>, ["hooks"],
    expect = |o| o.post_response_map_data.len(), "options.postResponseMapData", pages = [post_response_map_data: "postResponseMapData", response_data: "responseData"]);
kind!(/// postAggregate hook (read-only, no result).
    PostAggregate, "postAggregate", PostAggregateOptions => (), ["hooks"]);
kind!(/// A webhook function: one accepted incoming event, run by the queue worker (namespace
    /// `webhooks` only: integrator.io's own calls never reach it). No result.
    Webhook, "webhook", WebhookOptions => (), ["webhooks"], top = false);
kind!(/// ping wrapper.
    Ping, "ping", PingOptions => PingResult, ["wrappers"]);
kind!(/// export wrapper: `{data, lastPage, state, errors}` (enforced by [`ExportResult`]).
    Export, "export", ExportOptions => ExportResult, ["wrappers"], pages = [data: "data"]);
kind!(/// import wrapper: one response per `postMapData` record.
    Import, "import", ImportOptions => Vec<SubmitResponse>, ["wrappers"],
    expect = |o| o.post_map_data.len(), "options.postMapData", pages = [pre_map_data: "preMapData", post_map_data: "postMapData"]);
kind!(/// 1.0 installer function (connector installer or install step; step results optional).
    Installer, "installer", ConnectorOptions => Option<StepResult>, ["installer"]);
kind!(/// 1.0 uninstaller function (preUninstall, uninstall step or connector uninstaller).
    Uninstaller, "uninstaller", ConnectorOptions => Option<StepResult>, ["uninstaller"]);
kind!(/// update: 1.0 `installer` namespace and 2.0 top level. No result.
    Update, "update", UpdateOptions => (), ["installer"]);
kind!(/// 2.0 install/uninstall step. No result.
    Step, "step", InstallStepOptions => (), []);
kind!(/// persistSettings (1.0 `settings`; 2.0 top level).
    PersistSettings, "persistSettings", PersistSettingsOptions => PersistSettingsResult, ["settings"]);
kind!(/// refreshMetadata: return the field with refreshed metadata.
    RefreshMetadata, "refreshMetadata", ConnectorOptions => Value, ["settings"]);
kind!(/// changeEdition (1.0 `settings`; 2.0 top level). No result.
    ChangeEdition, "changeEdition", ChangeEditionOptions => (), ["settings"]);
kind!(/// getMappingMetadata: `{ "<importExternalId>": [...] }`.
    GetMappingMetadata, "getMappingMetadata", MappingMetadataOptions => Map<String, Value>, ["settings"]);
kind!(/// formInit (2.0): return the form.
    FormInit, "formInit", FormInitOptions => Value, []);
kind!(/// preSave (2.0): return the resource to save.
    PreSave, "preSave", PreSaveOptions => Value, []);
kind!(/// initChild (2.0): return the child integration to create.
    InitChild, "initChild", InitChildOptions => Value, []);

// Which records each kind's record checks look at, and how a rejected one comes back (see
// `checks`).

/// The errors of a rejected record as JSON values (the page-level `errors` of preSavePage).
fn page_errors(r: Rejected) -> impl Iterator<Item = Value> {
    let index = r.index;
    r.errors.into_iter().map(move |e| {
        let mut e = e;
        e.message = Some(format!("data[{index}]: {}", e.message.unwrap_or_default()));
        serde_json::to_value(e).unwrap_or(Value::Null)
    })
}

fn into_values(records: Vec<Record>) -> Vec<Value> {
    records.into_iter().map(Record::into_value).collect()
}

impl RecordKind for PreSavePage {
    const RECORDS: &'static str = "data";
    fn retain(o: &mut Self::Options, keep: &[bool]) -> Vec<Value> {
        into_values(split(&mut o.data, keep))
    }
    fn rejoin(mut out: Self::Output, rejected: Vec<Rejected>) -> Self::Output {
        out.errors
            .extend(rejected.into_iter().flat_map(page_errors));
        out
    }
}

impl RecordKind for PreMap {
    const RECORDS: &'static str = "data";
    fn retain(o: &mut Self::Options, keep: &[bool]) -> Vec<Value> {
        into_values(split(&mut o.data, keep))
    }
    fn rejoin(out: Self::Output, rejected: Vec<Rejected>) -> Self::Output {
        interleave(out, rejected, |r| RecordResult::fail(r.errors))
    }
}

impl RecordKind for PostMap {
    const RECORDS: &'static str = "postMapData";
    fn retain(o: &mut Self::Options, keep: &[bool]) -> Vec<Value> {
        split(&mut o.pre_map_data, keep);
        into_values(split(&mut o.post_map_data, keep))
    }
    fn rejoin(out: Self::Output, rejected: Vec<Rejected>) -> Self::Output {
        interleave(out, rejected, |r| RecordResult::fail(r.errors))
    }
}

impl RecordKind for Import {
    const RECORDS: &'static str = "postMapData";
    fn retain(o: &mut Self::Options, keep: &[bool]) -> Vec<Value> {
        split(&mut o.pre_map_data, keep);
        into_values(split(&mut o.post_map_data, keep))
    }
    fn rejoin(out: Self::Output, rejected: Vec<Rejected>) -> Self::Output {
        interleave(out, rejected, |r| SubmitResponse::failed(422, r.errors))
    }
}

impl RecordKind for PostSubmit {
    const RECORDS: &'static str = "postMapData";
    fn retain(o: &mut Self::Options, keep: &[bool]) -> Vec<Value> {
        split(&mut o.pre_map_data, keep);
        split(&mut o.post_map_data, keep);
        split(&mut o.response_data, keep)
            .into_iter()
            .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
            .collect()
    }
    fn rejoin(out: Self::Output, rejected: Vec<Rejected>) -> Self::Output {
        interleave(out, rejected, |r| {
            let mut response: SubmitResponse =
                serde_json::from_value(r.removed).unwrap_or_default();
            response
                .errors
                .get_or_insert_with(Vec::new)
                .extend(r.errors);
            response
        })
    }
}

impl RecordKind for PostResponseMap {
    const RECORDS: &'static str = "postResponseMapData";
    fn retain(o: &mut Self::Options, keep: &[bool]) -> Vec<Value> {
        split(&mut o.response_data, keep);
        into_values(split(&mut o.post_response_map_data, keep))
    }
    fn rejoin(out: Self::Output, rejected: Vec<Rejected>) -> Self::Output {
        interleave(out, rejected, |r| {
            let codes: Vec<&str> = r.errors.iter().filter_map(|e| e.code.as_deref()).collect();
            let messages: Vec<&str> = r
                .errors
                .iter()
                .filter_map(|e| e.message.as_deref())
                .collect();
            tracing::warn!(index = r.index, codes = ?codes, messages = ?messages,
                "postResponseMap record rejected by a declared check; passed through unchanged");
            Record::from(r.removed)
        })
    }
}

/// A typed function of kind `K`, with the checks declared at its registration.
#[doc(hidden)]
pub struct TypedFn<K: FunctionKind, F> {
    f: Arc<F>,
    checks: Arc<Checks<K>>,
    _kind: PhantomData<fn() -> K>,
}

impl<K: FunctionKind, F> TypedFn<K, F> {
    pub fn new(f: F) -> Self {
        Self::with_checks(Arc::new(f), Checks::default())
    }
    /// `f` behind the declared `checks` (see [`super::checks`]).
    pub fn with_checks(f: Arc<F>, checks: Checks<K>) -> Self {
        Self {
            f,
            checks: Arc::new(checks),
            _kind: PhantomData,
        }
    }
}

impl<K, F, Fut> Handler for TypedFn<K, F>
where
    K: FunctionKind,
    F: Fn(Invocation, K::Options) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ExtResult<K::Output>> + Send + 'static,
{
    fn call(&self, inv: Invocation, options: Options) -> BoxFuture<Result<Reply, CallFailure>> {
        let fail = |f: CallFailure| -> BoxFuture<Result<Reply, CallFailure>> {
            Box::pin(async move { Err(f) })
        };
        let bad = |e: serde_json::Error| CallFailure::BadOptions {
            kind: K::NAME,
            detail: e.to_string(),
        };
        let checks = &self.checks;
        // Declared checks read the options as a value; without any, records stay text.
        let (options, verdicts) = if checks.is_empty() {
            (options, None)
        } else {
            let value = match options.into_value() {
                Ok(v) => v,
                Err(e) => return fail(bad(e)),
            };
            if let Err(errors) = checks.check_settings(&value) {
                return fail(CallFailure::Invalid(errors));
            }
            let verdicts = checks.check_records(&value);
            (Options::Value(value), verdicts)
        };
        let mut options: K::Options = match K::read_options(options) {
            Ok(o) => o,
            Err(e) => return fail(bad(e)),
        };
        if let Err(e) = checks.check_call(&options) {
            return fail(CallFailure::Function(e));
        }
        let rejected = match verdicts {
            Some(v) => checks.retain(&mut options, v),
            None => Vec::new(),
        };
        let expected = K::expected_len(&options);
        let fut = (self.f)(inv, options);
        let checks = self.checks.clone();
        Box::pin(async move {
            let out = fut.await.map_err(CallFailure::Function)?;
            if let (Some((want, from)), Some(got)) = (expected, K::produced_len(&out))
                && want != got
            {
                return Err(CallFailure::Contract(format!(
                    "{} must return one result per record: {from} has {want} records but the function returned {got} results.",
                    K::NAME
                )));
            }
            checks
                .rejoin(out, rejected)
                .into_reply()
                .map_err(CallFailure::Wire)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[tokio::test]
    async fn length_contract_names_rule_and_both_lengths() {
        let h = TypedFn::<PreMap, _>::new(|_inv, o: PreMapOptions| async move {
            Ok(o.data
                .into_iter()
                .skip(1)
                .map(RecordResult::keep)
                .collect::<Vec<_>>())
        });
        let inv = Invocation::for_test("f", Duration::from_secs(1));
        let err = h
            .call(inv, json!({"data": [1, 2, 3]}).into())
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("preMap") && msg.contains("has 3 records") && msg.contains("returned 2"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn typed_results_serialize_compactly() {
        let h =
            TypedFn::<Ping, _>::new(|_inv, _o: PingOptions| async move { Ok(PingResult::ok()) });
        let inv = Invocation::for_test("f", Duration::from_secs(1));
        assert_eq!(
            h.call(inv, json!({}).into()).await.unwrap(),
            Reply::Json(r#"{"statusCode":200}"#.into())
        );
    }
}
