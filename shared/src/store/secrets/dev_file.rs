//! [`DevFileSecrets`], the development-only backend: secrets in clear text in a local JSON file.

use async_trait::async_trait;
use std::path::{Path, PathBuf};

use super::{ExposeSecret, SecretError, SecretStore, SecretString, validate_name, validate_value};

/// **Development only.** Secrets in clear text in a local JSON file (`{"name": "value", …}`),
/// `secrets.dev.json` in the working directory unless `EXTENSION_DEV_SECRETS_FILE` says
/// otherwise. Used by the embedded backend (local runs without AWS); the file is written with
/// mode 0600 and `/secrets.dev.json` is git-ignored, but nothing is encrypted: never use it for
/// production values, and never deploy with `EXTENSION_BACKEND=memory`.
#[derive(Debug)]
#[doc(hidden)]
pub struct DevFileSecrets {
    path: PathBuf,
    write_lock: tokio::sync::Mutex<()>,
}

impl DevFileSecrets {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            write_lock: tokio::sync::Mutex::new(()),
        }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}

type JsonMap = serde_json::Map<String, serde_json::Value>;

/// `Ok(None)` when the file does not exist.
fn read_dev_file(path: &Path, name: &str) -> Result<Option<JsonMap>, SecretError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(SecretError::unavailable(
                name,
                format!("cannot read {}: {e}", path.display()),
                false,
            ));
        }
    };
    let parsed = serde_json::from_str::<JsonMap>(&text);
    secrecy::zeroize::Zeroize::zeroize(&mut text.into_bytes());
    match parsed {
        Ok(map) => Ok(Some(map)),
        Err(_) => {
            tracing::warn!(file = %path.display(), "dev secrets file is not a JSON object");
            Err(SecretError::Corrupt {
                name: name.to_owned(),
            })
        }
    }
}

fn write_dev_file(path: &Path, map: &JsonMap) -> std::io::Result<()> {
    use std::io::Write;
    let text = serde_json::to_string_pretty(map).map_err(std::io::Error::other)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        // `mode` only applies to a new file: make sure a leftover temp file is private too.
        #[cfg(unix)]
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    secrecy::zeroize::Zeroize::zeroize(&mut text.into_bytes());
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[async_trait]
impl SecretStore for DevFileSecrets {
    async fn fetch(&self, name: &str) -> Result<SecretString, SecretError> {
        let path = self.path.clone();
        let owned = name.to_owned();
        let map = tokio::task::spawn_blocking(move || read_dev_file(&path, &owned))
            .await
            .map_err(|e| {
                SecretError::unavailable(name, format!("dev file reader failed: {e}"), false)
            })??;
        match map.and_then(|mut m| m.remove(name)) {
            None => Err(SecretError::NotFound {
                name: name.to_owned(),
            }),
            Some(serde_json::Value::String(s)) => Ok(SecretString::from(s)),
            Some(_) => Err(SecretError::Corrupt {
                name: name.to_owned(),
            }),
        }
    }

    async fn store(&self, name: &str, value: &SecretString) -> Result<(), SecretError> {
        validate_name(name)?;
        validate_value(name, value)?;
        let _guard = self.write_lock.lock().await;
        let path = self.path.clone();
        let owned = name.to_owned();
        let value = value.clone();
        tokio::task::spawn_blocking(move || {
            let mut map = read_dev_file(&path, &owned)?.unwrap_or_default();
            map.insert(
                owned.clone(),
                serde_json::Value::String(value.expose_secret().to_owned()),
            );
            write_dev_file(&path, &map).map_err(|e| {
                SecretError::unavailable(
                    &owned,
                    format!("cannot write {}: {e}", path.display()),
                    false,
                )
            })
        })
        .await
        .map_err(|e| {
            SecretError::unavailable(name, format!("dev file writer failed: {e}"), false)
        })?
    }

    fn describe(&self) -> String {
        format!("dev file {}", self.path.display())
    }
}
