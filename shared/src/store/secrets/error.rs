//! [`SecretError`]: why a secret could not be read or written.

/// Why a secret could not be read or written. The text names the secret, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// No secret of that name is stored.
    #[error("secret {name} is not set (store it with `set-secret {name}`)")]
    NotFound {
        /// The secret's name.
        name: String,
    },
    /// The function's role may not read the secret (KMS or DynamoDB said no).
    #[error(
        "access to secret {name} was denied (check the function role's KMS and DynamoDB permissions)"
    )]
    AccessDenied {
        /// The secret's name.
        name: String,
    },
    /// The ciphertext was made for another stack or name, or altered.
    #[error(
        "secret {name} cannot be decrypted here: its ciphertext is bound to another stack or name, or was altered (store it again with `set-secret {name}` for this stack)"
    )]
    WrongContext {
        /// The secret's name.
        name: String,
    },
    /// KMS or DynamoDB could not be used: unreachable or throttled after retries
    /// (`retryable`), past the deadline, or refusing the request for a reason retrying
    /// cannot fix (missing table, disabled key…).
    #[error("secret {name} is unavailable: {detail}")]
    Unavailable {
        /// The secret's name.
        name: String,
        /// What failed.
        detail: String,
        /// Whether another attempt may succeed (throttling, network, 5xx, timeout).
        retryable: bool,
    },
    /// The stored item or the decrypted value is not usable.
    #[error("secret {name} is corrupt: its stored item or decrypted value is not usable")]
    Corrupt {
        /// The secret's name.
        name: String,
    },
    /// A name or value refused before any storage is touched.
    #[error("secret {name} rejected: {reason}")]
    Invalid {
        /// The secret's name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
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
    /// An [`SecretError::Unavailable`] for `name`.
    pub fn unavailable(name: &str, detail: impl Into<String>, retryable: bool) -> Self {
        SecretError::Unavailable {
            name: name.to_owned(),
            detail: detail.into(),
            retryable,
        }
    }
}
