//! Validation declared at registration, checked before the function runs.
//!
//! A function declares what a call needs (a setting, a field of every record, any rule of its
//! own), so bad input is stopped before the function's code sees it. The declarations hang off
//! a typed registration ([`Registration`](super::module::Registration)):
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
//! | `ensure_setting(path)` | `options.settings` | the **whole call** fails: 422, one `{"message":"settings.<path> is required","code":"invalid_settings"}` per missing setting |
//! | `check(f)` | the typed options | the whole call fails with `f`'s error ([`invalid_settings`] makes the usual one) |
//! | `ensure_record(path)` | each record | **that record** is rejected with `{"code":"missing_field","message":"missing required field <path>"}` |
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

/// The error a failed call-level check usually returns: code `invalid_settings`, shown by
/// integrator.io as a 422.
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
#[doc(hidden)]
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
#[doc(hidden)]
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
mod tests;
