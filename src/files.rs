//! Files that hold secrets: created owner-only (0600, directories 0700) from the first byte,
//! and written through a temporary file and a rename so a crash never leaves half a key.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Writes `contents` to `path` atomically with mode 0600.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = write_aside(path, contents)?;
    std::fs::rename(tmp, path)
}

/// Writes `contents` only if `path` does not exist yet; returns whether it wrote. The file
/// appears complete or not at all (written aside, then hard-linked into place), so two
/// processes starting together on a shared volume agree on one file.
pub fn create_private(path: &Path, contents: &[u8]) -> std::io::Result<bool> {
    let tmp = write_aside(path, contents)?;
    let linked = std::fs::hard_link(&tmp, path);
    std::fs::remove_file(&tmp)?;
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes `contents` to a 0600 sibling of `path` and returns the sibling's path.
fn write_aside(path: &Path, contents: &[u8]) -> std::io::Result<std::path::PathBuf> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(tmp)
}
