//! **preSavePage** hooks: run on every page an export produces, before integrator.io saves it
//! and hands it to the rest of the flow.
//!
//! The function receives the whole page (`data`, the `errors` found so far, the export and
//! flow ids, the page index, `settings`, …) and returns the page to keep:
//! `{data, errors, abort}`. Setting `abort: true` stops the flow; adding to `errors` records a
//! problem on the export without stopping anything.
//!
//! Register it on the export as the preSavePage hook with function name `dropEmptyRecords`
//! or `dropDuplicates`.

use crate::fields;
use integrator_lambda::store::dedup::{KeyFields, MAX_KEY_FIELDS, seen_before};
use integrator_lambda::types::{PreSavePageOptions, PreSavePageResult};
use integrator_lambda::{ExtError, ExtResult, Invocation, Module, Record};
use serde_json::{Value, json};

/// The functions of this extension point: `dropEmptyRecords`, `dropDuplicates`.
pub fn module() -> Module {
    let mut m = Module::new();
    m.pre_save_page("dropEmptyRecords", drop_empty_records);
    m.pre_save_page("dropDuplicates", drop_duplicates);
    m
}

/// `dropEmptyRecords`: remove records nobody can use from the page.
///
/// A record is dropped when it is `null` or an empty object `{}`, or — if
/// `settings.requiredFields` lists up to five dotted field paths (e.g.
/// `["id", "customer.email"]`) — when any of those fields is absent or `null`.
///
/// Each dropped record is reported in `errors` (after the errors the page already had), one
/// entry per problem, with `N` the record's 0-based position in the incoming page:
///
/// ```json
/// {"code": "missing_required_field", "message": "record 3 is missing field customer.email", "source": "preSavePage"}
/// ```
///
/// Empty records are reported as `"record N is empty"` with the same code. The page is never
/// aborted (`abort: false`). An invalid `settings.requiredFields` fails the call with
/// `invalid_settings`.
pub async fn drop_empty_records(
    _inv: Invocation,
    options: PreSavePageOptions,
) -> ExtResult<PreSavePageResult> {
    let required = fields::required_fields(options.settings.as_ref())?;
    let mut errors = options.errors;
    let mut kept = Vec::with_capacity(options.data.len());
    for (index, record) in options.data.into_iter().enumerate() {
        let empty = match record.value() {
            Value::Null => true,
            Value::Object(map) => map.is_empty(),
            _ => false,
        };
        if empty {
            errors.push(drop_error(format!("record {index} is empty")));
            continue;
        }
        let missing = fields::missing_fields(&record, &required);
        if missing.is_empty() {
            kept.push(record);
        } else {
            errors.extend(
                missing
                    .into_iter()
                    .map(|field| drop_error(format!("record {index} is missing field {field}"))),
            );
        }
    }
    Ok(PreSavePageResult::new(kept, errors))
}

fn drop_error(message: String) -> Value {
    json!({"code": "missing_required_field", "message": message, "source": "preSavePage"})
}

/// How many dedup checks `dropDuplicates` keeps in flight at once.
pub const DEDUP_CONCURRENCY: usize = 16;

/// What `dropDuplicates` does with a record it has seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupMode {
    /// Leave it out of the page (the default).
    Drop,
    /// Keep it, and report it in `errors`.
    Mark,
}

/// `dropDuplicates`' settings: `settings.dedupFields` and `settings.dedupMode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupSettings {
    pub fields: KeyFields,
    pub mode: DedupMode,
}

impl DedupSettings {
    /// Read and validate the settings; any mistake is an `invalid_settings` error.
    pub fn from_settings(settings: Option<&Value>) -> ExtResult<Self> {
        let invalid_fields = || {
            ExtError::with_code(
                "invalid_settings",
                format!(
                    "settings.dedupFields must be an array of 1 to {MAX_KEY_FIELDS} field paths such as \"customer.id\" or \"lines.0.sku\"."
                ),
            )
        };
        let paths: Vec<&str> = match settings.and_then(|s| s.get("dedupFields")) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().ok_or_else(invalid_fields))
                .collect::<ExtResult<_>>()?,
            _ => return Err(invalid_fields()),
        };
        let fields = KeyFields::new(paths).map_err(|_| invalid_fields())?;
        let mode = match settings.and_then(|s| s.get("dedupMode")) {
            None | Some(Value::Null) => DedupMode::Drop,
            Some(Value::String(m)) if m == "drop" => DedupMode::Drop,
            Some(Value::String(m)) if m == "mark" => DedupMode::Mark,
            Some(_) => {
                return Err(ExtError::with_code(
                    "invalid_settings",
                    "settings.dedupMode must be \"drop\" (the default) or \"mark\".",
                ));
            }
        };
        Ok(Self { fields, mode })
    }
}

/// `dropDuplicates`: leave out records this export has already delivered.
///
/// Settings:
///
/// - `dedupFields` (required): 1 to 5 dotted field paths whose values identify a record, e.g.
///   `["id"]` or `["customer.id", "lines.0.sku"]` (a numeric segment indexes an array);
/// - `dedupMode`: `"drop"` (default) leaves duplicates out of the page silently; `"mark"` keeps
///   them and reports each in `errors`, after the errors the page already had:
///
/// ```json
/// {"code": "duplicate_record", "message": "record 3 was already seen by this export", "source": "dropDuplicates"}
/// ```
///
/// Keys are scoped to the export (`_exportId`, or `_flowId` when there is none) and to the
/// configured field list, so changing `dedupFields` starts afresh instead of comparing
/// unrelated values. A key is remembered for 7 days (`EXTENSION_DEDUP_TTL_SECS`) after the
/// **last** time it was seen. Two identical records in one page: the first is kept, the second
/// is a duplicate. The order of the kept records is unchanged.
///
/// Records that have none of the fields (all absent or `null`) are kept and not remembered:
/// a missing id never makes records look alike. In `preview` the page is returned unchanged
/// and nothing is remembered, so previewing an export does not hide records from its next
/// run.
///
/// Errors: `invalid_settings` for missing or invalid settings; `missing_scope` without
/// `_exportId` and `_flowId`; `dedup_unavailable` when the deployment has no dedup store or
/// the store fails (the page fails rather than let duplicates through).
pub async fn drop_duplicates(
    inv: Invocation,
    options: PreSavePageOptions,
) -> ExtResult<PreSavePageResult> {
    let settings = DedupSettings::from_settings(options.settings.as_ref())?;
    let dedup = inv.dedup()?.for_call(inv.deadline());
    let owner = match (&options.export_id, &options.flow_id) {
        (Some(id), _) if !id.is_empty() => format!("export:{id}"),
        (_, Some(id)) if !id.is_empty() => format!("flow:{id}"),
        _ => {
            return Err(ExtError::with_code(
                "missing_scope",
                "dropDuplicates needs _exportId or _flowId to know whose records it has seen.",
            ));
        }
    };
    if options.preview == Some(true) {
        return Ok(PreSavePageResult::new(options.data, options.errors));
    }
    let scope = format!(
        "preSavePage.dropDuplicates\u{1f}{owner}\u{1f}{}",
        settings.fields.paths().join("\u{1f}")
    );
    let fields = &settings.fields;
    let key_of = |r: &Record| fields.any_present(r).then(|| fields.key(&scope, r));
    let duplicate = seen_before(&dedup, &options.data, key_of, DEDUP_CONCURRENCY)
        .await
        .map_err(|e| ExtError::with_code("dedup_unavailable", e.to_string()))?;
    let mut errors = options.errors;
    let mut kept = Vec::with_capacity(options.data.len());
    for (index, (record, dup)) in options.data.into_iter().zip(duplicate).enumerate() {
        match (dup, settings.mode) {
            (false, _) => kept.push(record),
            (true, DedupMode::Drop) => {}
            (true, DedupMode::Mark) => {
                errors.push(json!({
                    "code": "duplicate_record",
                    "message": format!("record {index} was already seen by this export"),
                    "source": "dropDuplicates"
                }));
                kept.push(record);
            }
        }
    }
    Ok(PreSavePageResult::new(kept, errors))
}

#[cfg(test)]
mod tests;
