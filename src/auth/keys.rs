//! The token signing key: `SECRET_KEY`, or one generated into the data directory.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use base64::Engine as _;
use rand::RngCore;

use crate::secret::Secret;

const KEY_FILE: &str = "secret_key";

/// Reads `DATA_DIR/secret_key`, creating it (64 random bytes, mode 0600, written to a temp
/// file then renamed) when absent. Returns the key and whether it was just generated.
pub fn load_or_generate_secret_key(data_dir: &Path) -> anyhow::Result<(Secret<Vec<u8>>, bool)> {
    let path = data_dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let key = text.trim();
            anyhow::ensure!(
                key.len() >= 32,
                "{} holds a key shorter than 32 bytes; remove it to generate a new one",
                path.display()
            );
            return Ok((Secret::new(key.as_bytes().to_vec()), false));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let mut bytes = [0u8; 64];
    rand::rng().fill_bytes(&mut bytes);
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let tmp = data_dir.join(format!(".{KEY_FILE}.{}.tmp", std::process::id()));
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(key.as_bytes())?;
        file.sync_all()?;
    }
    // Two instances starting at once: a hard link fails if the key already exists, so the
    // first one wins and the other reads its key (a rename would overwrite it).
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok((load_or_generate_secret_key(data_dir)?.0, true)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_generate_secret_key(data_dir),
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (first, generated) = load_or_generate_secret_key(dir.path()).unwrap();
        assert!(generated);
        let (second, generated) = load_or_generate_secret_key(dir.path()).unwrap();
        assert!(!generated);
        assert_eq!(first.expose(), second.expose());
        assert!(first.expose().len() >= 64);
    }
}
