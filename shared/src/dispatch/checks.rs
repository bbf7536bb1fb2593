//! Validation declared at registration, checked before the function runs.
//!
//! Segment's integrations declare what a call needs (`.ensure('settings.apiKey')`,
//! `.ensure('message.userId')`) and stop bad input before the mapping code sees it. Here the
//! same declarations hang off a typed registration ([`Registration`](super::module::Registration)):
//!
//! ```
//! use integrator_lambda::types::{PreMapOptions, RecordError, RecordResult};
//! use integrator_lambda::{ExtResult, Invocation, Module, invalid_settings};
//!
//! async fn enrich(_inv: Invocation, o: PreMapOptions) -> ExtResult<Vec<RecordResult>> {
//!     Ok(o.data.into_iter().map(RecordResult::keep).collect())
//! }
//!
//! let mut m = Module::new();
//! m.pre_map("enrichRecords", enrich)
//!     .ensure_setting("baseUrl")          // settings.baseUrl: else the call fails (422)
//!     .ensure_record("customerId")        // else that record fails with missing_field
//!     .check(|o: &PreMapOptions| match o.settings.as_ref().and_then(|s| s.get("cacheSecs")) {
//!         Some(v) if !v.is_u64() && !v.is_null() => Err(invalid_settings("settings.cacheSecs must be a whole number of seconds")),
//!         _ => Ok(()),
//!     })
//!     .check_record(|r| match r.get("customerId") {
//!         Some(id) if id.is_string() || id.is_u64() => None,
//!         _ => Some(RecordError::new("invalid_field", "customerId must be a string or a number")),
//!     });
//! ```
//!
//! What each declaration does (paths are dotted, arrays by index: `customer.lines.0.sku`; a
//! value is missing when the path leads nowhere or to `null`; `""`, `0` and `false` count as
//! present):
//!
//! | declaration | checked on | when it fails |
//! |---|---|---|
//! | `ensure_setting(path)` | `options.settings` | the **whole call** fails: 422, one `{"message":"settings.<path> is required","code":"invalid_settings"}` per missing setting (Segment's `invalid()`) |
//! | `check(f)` | the typed options | the whole call fails with `f`'s error ([`invalid_settings`] makes the usual one) |
//! | `ensure_record(path)` | each record | **that record** is rejected with `{"code":"missing_field","message":"missing required field <path>"}` (Segment's `reject()`) |
//! | `check_record(f)` | each record | that record is rejected with the [`RecordError`] `f` returns (`None`: it passes) |
//!
//! Call-level checks run first (settings, then `check`s, in declaration order), then record
//! checks (every failing check of a record is reported, in declaration order). Rejected records
//! are taken out of the options before the function runs — it never sees them — and put back
//! into its answer at their place, so every extension point keeps its contract:
//!
//! | kind | records checked | a rejected record becomes |
//! |---|---|---|
//! | preSavePage | `data` | dropped from `data`; each error goes to the page's `errors` as `{"code","message":"data[<i>]: …"}` |
//! | preMap | `data` | `{"errors":[…]}` at its index |
//! | postMap | `postMapData` (`preMapData` filtered alike) | `{"errors":[…]}` at its index |
//! | import | `postMapData` (`preMapData` filtered alike) | `{"statusCode":422,"errors":[…],"ignored":false}` at its index |
//! | postSubmit | `postMapData` (`preMapData`, `responseData` filtered alike) | its own `responseData` element, with the errors appended to its `errors` |
//! | postResponseMap | `postResponseMapData` (`responseData` filtered alike) | the record, unchanged (this hook has no per-record error in its answer); a `warn` line names the errors |
//!
//! The length contract (one result per record) is checked on what the function got, before
//! the rejected records are put back.

use super::handler::ExtError;
use super::kinds::FunctionKind;
use crate::protocol::WireError;
use crate::protocol::types::RecordError;
use crate::store::dedup::field_at;
use serde_json::Value;
use std::sync::Arc;

/// The error a failed call-level check usually returns: code `invalid_settings` (Segment's
/// `invalid()`), shown by integrator.io as a 422.
pub fn invalid_settings(message: impl Into<String>) -> ExtError {
    ExtError::with_code("invalid_settings", message)
}

/// Is the value at `path` absent or `null`?
fn missing(value: Option<&Value>, path: &str) -> bool {
    value
        .and_then(|v| field_at(v, path))
        .is_none_or(Value::is_null)
}

type CallCheck<O> = Arc<dyn Fn(&O) -> Result<(), ExtError> + Send + Sync>;
type RecordCheck = Arc<dyn Fn(&Value) -> Option<RecordError> + Send + Sync>;

/// One rejected record: where it was, why, and what the kind passes through in its place.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Its index in the records integrator.io sent.
    pub index: usize,
    pub errors: Vec<RecordError>,
    /// What [`RecordKind::retain`] took out for it (the record, or its submit response).
    pub removed: Value,
}

/// A kind whose options carry records that can be rejected one by one.
pub trait RecordKind: FunctionKind {
    /// The options key holding the records the checks look at.
    const RECORDS: &'static str;
    /// Keep the records whose `keep` is true (and the parallel arrays alike); return, in
    /// order, what each removed record passes through to [`RecordKind::rejoin`].
    fn retain(options: &mut Self::Options, keep: &[bool]) -> Vec<Value>;
    /// Put the rejected records back into the function's answer, at their indices.
    fn rejoin(output: Self::Output, rejected: Vec<Rejected>) -> Self::Output;
}

/// Keep the elements of `items` whose flag is set; the others, in order. A list whose length
/// is not the flags' (a parallel array integrator.io left out) is not touched.
pub(crate) fn split<T>(items: &mut Vec<T>, keep: &[bool]) -> Vec<T> {
    if items.len() != keep.len() {
        return Vec::new();
    }
    let mut removed = Vec::new();
    let mut kept = Vec::with_capacity(items.len());
    for (item, k) in std::mem::take(items).into_iter().zip(keep) {
        if *k {
            kept.push(item);
        } else {
            removed.push(item);
        }
    }
    *items = kept;
    removed
}

/// Merge the function's results for the kept records with one value per rejected record.
pub(crate) fn interleave<T>(
    output: Vec<T>,
    rejected: Vec<Rejected>,
    mut make: impl FnMut(Rejected) -> T,
) -> Vec<T> {
    let mut out = Vec::with_capacity(output.len() + rejected.len());
    let mut kept = output.into_iter();
    let mut rejected = rejected.into_iter().peekable();
    let mut i = 0;
    loop {
        if rejected.peek().is_some_and(|r| r.index == i) {
            if let Some(r) = rejected.next() {
                out.push(make(r));
            }
        } else if let Some(v) = kept.next() {
            out.push(v);
        } else {
            break;
        }
        i += 1;
    }
    // Indices past the end (cannot happen with a kept contract) still come back.
    out.extend(rejected.map(make));
    out
}

/// The declared checks of one registration.
pub struct Checks<K: FunctionKind> {
    settings: Vec<String>,
    calls: Vec<CallCheck<K::Options>>,
    records: Vec<String>,
    record_checks: Vec<RecordCheck>,
    /// Set once a record check is declared (only for [`RecordKind`]s).
    record_kind: Option<RecordHooks<K>>,
}

struct RecordHooks<K: FunctionKind> {
    key: &'static str,
    retain: fn(&mut K::Options, &[bool]) -> Vec<Value>,
    rejoin: fn(K::Output, Vec<Rejected>) -> K::Output,
}

impl<K: FunctionKind> Clone for RecordHooks<K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K: FunctionKind> Copy for RecordHooks<K> {}

impl<K: FunctionKind> Default for Checks<K> {
    fn default() -> Self {
        Self {
            settings: Vec::new(),
            calls: Vec::new(),
            records: Vec::new(),
            record_checks: Vec::new(),
            record_kind: None,
        }
    }
}

impl<K: FunctionKind> Clone for Checks<K> {
    fn clone(&self) -> Self {
        Self {
            settings: self.settings.clone(),
            calls: self.calls.clone(),
            records: self.records.clone(),
            record_checks: self.record_checks.clone(),
            record_kind: self.record_kind,
        }
    }
}

impl<K: FunctionKind> Checks<K> {
    pub(crate) fn setting(&mut self, path: &str) {
        self.settings.push(path.to_owned());
    }
    pub(crate) fn call<C>(&mut self, check: C)
    where
        C: Fn(&K::Options) -> Result<(), ExtError> + Send + Sync + 'static,
    {
        self.calls.push(Arc::new(check));
    }
    pub(crate) fn record(&mut self, path: &str)
    where
        K: RecordKind,
    {
        self.records.push(path.to_owned());
        self.record_kind = Some(Self::hooks());
    }
    pub(crate) fn record_check<C>(&mut self, check: C)
    where
        K: RecordKind,
        C: Fn(&Value) -> Option<RecordError> + Send + Sync + 'static,
    {
        self.record_checks.push(Arc::new(check));
        self.record_kind = Some(Self::hooks());
    }
    fn hooks() -> RecordHooks<K>
    where
        K: RecordKind,
    {
        RecordHooks {
            key: K::RECORDS,
            retain: K::retain,
            rejoin: K::rejoin,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.settings.is_empty() && self.calls.is_empty() && self.record_kind.is_none()
    }

    /// The declared settings missing from the raw options: one 422 error each.
    pub(crate) fn check_settings(&self, options: &Value) -> Result<(), Vec<WireError>> {
        let settings = options.get("settings");
        let errors: Vec<WireError> = self
            .settings
            .iter()
            .filter(|p| missing(settings, p))
            .map(|p| WireError::from(invalid_settings(format!("settings.{p} is required"))))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The custom call-level checks on the typed options; the first failure.
    pub(crate) fn check_call(&self, options: &K::Options) -> Result<(), ExtError> {
        self.calls.iter().try_for_each(|c| c(options))
    }

    /// Each record's errors (empty for a record that passes), or `None` when no record check
    /// is declared or the options carry no record list.
    pub(crate) fn check_records(&self, options: &Value) -> Option<Vec<Vec<RecordError>>> {
        let hooks = self.record_kind?;
        let records = options.get(hooks.key)?.as_array()?;
        let verdicts: Vec<Vec<RecordError>> = records
            .iter()
            .map(|r| {
                let mut errors: Vec<RecordError> = self
                    .records
                    .iter()
                    .filter(|p| missing(Some(r), p))
                    .map(|p| {
                        RecordError::new("missing_field", format!("missing required field {p}"))
                    })
                    .collect();
                errors.extend(self.record_checks.iter().filter_map(|c| c(r)));
                errors
            })
            .collect();
        verdicts.iter().any(|e| !e.is_empty()).then_some(verdicts)
    }

    /// Take the rejected records out of `options`; what [`Checks::rejoin`] needs later.
    pub(crate) fn retain(
        &self,
        options: &mut K::Options,
        verdicts: Vec<Vec<RecordError>>,
    ) -> Vec<Rejected> {
        let Some(hooks) = self.record_kind else {
            return Vec::new();
        };
        let keep: Vec<bool> = verdicts.iter().map(Vec::is_empty).collect();
        let removed = (hooks.retain)(options, &keep);
        verdicts
            .into_iter()
            .enumerate()
            .filter(|(_, e)| !e.is_empty())
            .zip(removed)
            .map(|((index, errors), removed)| Rejected {
                index,
                errors,
                removed,
            })
            .collect()
    }

    pub(crate) fn rejoin(&self, output: K::Output, rejected: Vec<Rejected>) -> K::Output {
        match self.record_kind {
            Some(hooks) if !rejected.is_empty() => (hooks.rejoin)(output, rejected),
            _ => output,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::kinds::{Import, PostResponseMap, PostSubmit, PreMap, PreSavePage};
    use crate::protocol::types::*;
    use serde_json::json;

    #[test]
    fn missing_means_absent_or_null_and_walks_arrays() {
        let v = json!({"a": {"b": [null, {"c": 0}]}, "e": ""});
        assert!(!missing(Some(&v), "a.b.1.c"));
        assert!(!missing(Some(&v), "e"));
        assert!(missing(Some(&v), "a.b.0"));
        assert!(missing(Some(&v), "a.x"));
        assert!(missing(None, "a"));
    }

    #[test]
    fn settings_report_every_missing_path_as_invalid_settings() {
        let mut c = Checks::<PreMap>::default();
        c.setting("baseUrl");
        c.setting("auth.user");
        c.setting("present");
        let errors = c
            .check_settings(&json!({"settings": {"present": false, "baseUrl": null}}))
            .unwrap_err();
        let wire: Vec<(String, String)> = errors
            .iter()
            .map(|e| (e.code.to_string(), e.message.to_string()))
            .collect();
        assert_eq!(
            wire,
            [
                (
                    "invalid_settings".into(),
                    "settings.baseUrl is required".into()
                ),
                (
                    "invalid_settings".into(),
                    "settings.auth.user is required".into()
                ),
            ]
        );
        assert!(
            c.check_settings(
                &json!({"settings": {"baseUrl": "x", "auth": {"user": 1}, "present": 0}})
            )
            .is_ok()
        );
    }

    #[test]
    fn record_checks_collect_every_error_of_a_record() {
        let mut c = Checks::<PreMap>::default();
        c.record("id");
        c.record_check(|r| {
            r.get("id")
                .is_some_and(Value::is_string)
                .then(|| RecordError::new("invalid_field", "id must be a number"))
        });
        assert_eq!(c.check_records(&json!({"data": [{"id": 1}]})), None);
        let v = c
            .check_records(&json!({"data": [{"id": 1}, {}, {"id": "x"}]}))
            .unwrap();
        assert!(v[0].is_empty());
        assert_eq!(v[1][0].code.as_deref(), Some("missing_field"));
        assert_eq!(
            v[1][0].message.as_deref(),
            Some("missing required field id")
        );
        assert_eq!(v[2][0].code.as_deref(), Some("invalid_field"));
    }

    fn records(values: Vec<Value>) -> Vec<crate::protocol::Record> {
        values.into_iter().map(Into::into).collect()
    }

    fn rejected(index: usize, removed: Value) -> Rejected {
        Rejected {
            index,
            errors: vec![RecordError::new(
                "missing_field",
                "missing required field id",
            )],
            removed,
        }
    }

    #[test]
    fn pre_map_rejects_go_back_at_their_index() {
        let mut o = PreMapOptions {
            data: records(vec![json!(0), json!(1), json!(2), json!(3)]),
            ..Default::default()
        };
        let removed = PreMap::retain(&mut o, &[false, true, false, true]);
        assert_eq!(o.data, [json!(1), json!(3)]);
        assert_eq!(removed, [json!(0), json!(2)]);
        let out = PreMap::rejoin(
            vec![RecordResult::keep(json!(1)), RecordResult::keep(json!(3))],
            vec![rejected(0, json!(0)), rejected(2, json!(2))],
        );
        let text = crate::protocol::json::to_string(&out).unwrap();
        assert_eq!(
            text,
            r#"[{"errors":[{"code":"missing_field","message":"missing required field id"}]},{"data":1},{"errors":[{"code":"missing_field","message":"missing required field id"}]},{"data":3}]"#
        );
    }

    #[test]
    fn pre_save_page_drops_and_reports_on_the_page() {
        let mut o = PreSavePageOptions {
            data: records(vec![json!({"id": 1}), json!({})]),
            ..Default::default()
        };
        let removed = PreSavePage::retain(&mut o, &[true, false]);
        assert_eq!(o.data.len(), 1);
        let out = PreSavePage::rejoin(
            PreSavePageResult::new(o.data, vec![json!({"code": "x", "message": "own"})]),
            vec![rejected(1, removed[0].clone())],
        );
        let text = crate::protocol::json::to_string(&out).unwrap();
        assert_eq!(
            text,
            r#"{"data":[{"id":1}],"errors":[{"code":"x","message":"own"},{"code":"missing_field","message":"data[1]: missing required field id"}],"abort":false,"newErrorsAndRetryData":[]}"#
        );
    }

    #[test]
    fn import_post_submit_and_post_response_map_keep_their_shapes() {
        let out = Import::rejoin(vec![SubmitResponse::ok(7)], vec![rejected(0, json!({}))]);
        assert_eq!(
            crate::protocol::json::to_string(&out).unwrap(),
            r#"[{"statusCode":422,"errors":[{"code":"missing_field","message":"missing required field id"}],"ignored":false},{"statusCode":200,"ignored":false,"id":7}]"#
        );
        let mut o = PostSubmitOptions {
            post_map_data: records(vec![json!({}), json!({"id": 2})]),
            response_data: vec![SubmitResponse::ok(1), SubmitResponse::ok(2)],
            ..Default::default()
        };
        let removed = PostSubmit::retain(&mut o, &[false, true]);
        assert_eq!(o.response_data.len(), 1);
        let out = PostSubmit::rejoin(o.response_data, vec![rejected(0, removed[0].clone())]);
        assert_eq!(
            crate::protocol::json::to_string(&out).unwrap(),
            r#"[{"statusCode":200,"errors":[{"code":"missing_field","message":"missing required field id"}],"ignored":false,"id":1},{"statusCode":200,"ignored":false,"id":2}]"#
        );
        let mut o = PostResponseMapOptions {
            post_response_map_data: records(vec![json!({"a": 1}), json!({"b": 2})]),
            response_data: records(vec![json!(1)]),
            ..Default::default()
        };
        let removed = PostResponseMap::retain(&mut o, &[true, false]);
        // A parallel array of another length is left alone.
        assert_eq!(o.response_data, [json!(1)]);
        let out = PostResponseMap::rejoin(
            records(vec![json!({"a": 1, "x": true})]),
            vec![rejected(1, removed[0].clone())],
        );
        assert_eq!(out, [json!({"a": 1, "x": true}), json!({"b": 2})]);
    }
}
