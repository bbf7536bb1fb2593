//! The kinds of message the worker reads: each record's body is parsed once into a [`Message`].

use super::WEBHOOK_NAMESPACE;
use crate::jobs::deferred::JobRef;
use crate::jobs::runs::is_run_message;
use serde_json::Value;

/// Is `body` a message of the incoming queue (`endpoint` and `event`, not an envelope)?
pub fn is_webhook_message(body: &Value) -> bool {
    body.get("endpoint").is_some_and(Value::is_string)
        && body.get("event").is_some_and(Value::is_object)
        && body.get("options").is_none()
}

/// A webhook message as an envelope, plus its idempotency identity (the key and the payload
/// hashed with it) when it has a dedup key; an error when its endpoint names no function.
pub fn webhook_envelope(body: Value) -> Result<(Value, Option<(String, Value)>), String> {
    let Value::Object(mut message) = body else {
        return Err("a webhook message must be a JSON object".into());
    };
    let endpoint = message
        .get("endpoint")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let function = match message.remove("function") {
        Some(Value::String(f)) if !f.is_empty() => f,
        _ => {
            return Err(format!(
                "endpoint \"{endpoint}\" names no webhook function (set \"function\" in its configuration)"
            ));
        }
    };
    let identity = match message.get("dedupKey") {
        Some(Value::String(k)) => Some((
            format!("{endpoint}#{k}"),
            serde_json::json!({
                "function": function,
                "endpoint": endpoint,
                "event": message.get("event").cloned().unwrap_or(Value::Null),
            }),
        )),
        _ => None,
    };
    let envelope = serde_json::json!({
        "diy": true,
        "type": WEBHOOK_NAMESPACE,
        "function": function,
        "options": Value::Object(message),
    });
    Ok((envelope, identity))
}

/// One record's body, parsed once: its kind, with what the kind's handler needs.
pub(super) enum Message {
    /// A run or stream message (`{"run": …}` / `{"stream": …}`), for the run engine.
    Run(Value),
    /// A webhook message of the incoming queue, as its envelope, plus its idempotency identity
    /// (the key and the payload hashed with it) when it has a dedup key.
    Webhook {
        envelope: Value,
        identity: Option<(String, Value)>,
    },
    /// An envelope with `_job`: a deferred job's message.
    Job { envelope: Value, job: JobRef },
    /// Any other body: an extension envelope (the dispatcher checks it).
    Envelope(Value),
}

/// Why a record's body could not be read into a [`Message`] (the message fails).
pub(super) enum Unreadable {
    /// The record has no body.
    NoBody,
    /// The body is not JSON.
    NotJson(serde_json::Error),
    /// A webhook message whose endpoint names no function.
    Webhook(String),
}

impl Message {
    /// Parse a record's body: a run/stream message first, then a webhook message, then an
    /// envelope (a deferred job's when it has `_job`).
    pub(super) fn parse(body: Option<&str>) -> Result<Message, Unreadable> {
        let body: Value = match body.map(serde_json::from_str) {
            Some(Ok(v)) => v,
            Some(Err(e)) => return Err(Unreadable::NotJson(e)),
            None => return Err(Unreadable::NoBody),
        };
        if is_run_message(&body) {
            return Ok(Message::Run(body));
        }
        if is_webhook_message(&body) {
            return match webhook_envelope(body) {
                Ok((envelope, identity)) => Ok(Message::Webhook { envelope, identity }),
                Err(e) => Err(Unreadable::Webhook(e)),
            };
        }
        Ok(match JobRef::from_body(&body) {
            Some(job) => Message::Job {
                envelope: body,
                job,
            },
            None => Message::Envelope(body),
        })
    }
}

impl Unreadable {
    /// Log why the message is not run (it fails, and SQS redelivers it).
    pub(super) fn log(&self) {
        match self {
            Unreadable::NotJson(e) => tracing::warn!(error = %e, "message body is not JSON"),
            Unreadable::NoBody => tracing::warn!("message has no body"),
            Unreadable::Webhook(e) => {
                tracing::error!(error = %e, "webhook message not run; it will be redelivered, then dead-lettered")
            }
        }
    }
}
