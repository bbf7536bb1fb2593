//! Checks of secret names and values before any storage is touched: [`validate_name`],
//! [`validate_value`], [`value_from_input`].

use super::{ExposeSecret, MAX_NAME_LEN, MAX_VALUE_LEN, SecretError, SecretString};

/// A name as it may appear in an error: quoted, escaped and bounded, since it may be invalid.
fn shown(name: &str) -> String {
    let mut s: String = name.escape_debug().take(80).collect();
    if name.escape_debug().nth(80).is_some() {
        s.push('…');
    }
    format!("\"{s}\"")
}

/// Check a secret name: 1 to 128 of `A-Z a-z 0-9 _ . -`.
pub fn validate_name(name: &str) -> Result<(), SecretError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(SecretError::Invalid {
            name: shown(name),
            reason: "a name is 1 to 128 characters among A-Z a-z 0-9 _ . -",
        })
    }
}

/// Check a value before storing it: not empty, at most [`MAX_VALUE_LEN`] bytes.
pub fn validate_value(name: &str, value: &SecretString) -> Result<(), SecretError> {
    let len = value.expose_secret().len();
    let reason = if len == 0 {
        "refusing to store an empty value"
    } else if len > MAX_VALUE_LEN {
        "the value is longer than 4096 bytes (the KMS Encrypt limit)"
    } else {
        return Ok(());
    };
    Err(SecretError::Invalid {
        name: shown(name),
        reason,
    })
}

/// Turn what `set-secret` read from stdin into a value: UTF-8, one trailing newline (`\n` or
/// `\r\n`) stripped, not empty. The input buffer is wiped.
pub fn value_from_input(name: &str, mut raw: Vec<u8>) -> Result<SecretString, SecretError> {
    use secrecy::zeroize::Zeroize;
    if raw.ends_with(b"\r\n") {
        raw.truncate(raw.len() - 2);
    } else if raw.ends_with(b"\n") {
        raw.truncate(raw.len() - 1);
    }
    let value = match std::str::from_utf8(&raw) {
        Ok(s) => SecretString::from(s),
        Err(_) => {
            raw.zeroize();
            return Err(SecretError::Invalid {
                name: shown(name),
                reason: "the value is not UTF-8 text",
            });
        }
    };
    raw.zeroize();
    validate_value(name, &value)?;
    Ok(value)
}
