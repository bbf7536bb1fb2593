//! [`SecretError`]: why a secret could not be read or written.

/// Why a secret could not be read or written. The text names the secret, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret {name} is not set (store it with `set-secret {name}`)")]
    NotFound { name: String },
    #[error(
        "access to secret {name} was denied (check the function role's KMS and DynamoDB permissions)"
    )]
    AccessDenied { name: String },
    #[error(
        "secret {name} cannot be decrypted here: its ciphertext is bound to another stack or name, or was altered (store it again with `set-secret {name}` for this stack)"
    )]
    WrongContext { name: String },
    /// KMS or DynamoDB could not be used: unreachable or throttled after retries
    /// (`retryable`), past the deadline, or refusing the request for a reason retrying
    /// cannot fix (missing table, disabled key…).
    #[error("secret {name} is unavailable: {detail}")]
    Unavailable {
        name: String,
        detail: String,
        /// Whether another attempt may succeed (throttling, network, 5xx, timeout).
        retryable: bool,
    },
    #[error("secret {name} is corrupt: its stored item or decrypted value is not usable")]
    Corrupt { name: String },
    /// A name or value refused before any storage is touched.
    #[error("secret {name} rejected: {reason}")]
    Invalid { name: String, reason: &'static str },
}

impl SecretError {
    /// The `code` integrator.io shows for this error.
    pub fn code(&self) -> &'static str {
        match self {
            SecretError::NotFound { .. } => "secret_not_found",
            SecretError::AccessDenied { .. } => "secret_access_denied",
            SecretError::WrongContext { .. } => "secret_invalid_context",
            SecretError::Unavailable { .. } => "secret_unavailable",
            SecretError::Corrupt { .. } => "secret_corrupt",
            SecretError::Invalid { .. } => "secret_invalid",
        }
    }
    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SecretError::Unavailable {
                retryable: true,
                ..
            }
        )
    }
    pub fn unavailable(name: &str, detail: impl Into<String>, retryable: bool) -> Self {
        SecretError::Unavailable {
            name: name.to_owned(),
            detail: detail.into(),
            retryable,
        }
    }
}
