//! The per-user runtime folder that holds one socket per traced process (`<pid>.sock`).
//!
//! The JS side picks the path (`$XDG_RUNTIME_DIR/panoptic`, else `<os.tmpdir()>/panoptic-<uid>`);
//! this module makes sure it is safe to use. In a shared temporary folder anyone may have created
//! that path first, so an existing folder is used only when it is a real folder (not a symbolic
//! link), owned by this process's effective user, with mode 0700. Anything else is refused: a
//! folder another user controls could hand us a fake process, or read the scripts we send.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The mode of the folder; sockets in it get [`SOCKET_MODE`].
pub const DIR_MODE: u32 = 0o700;
/// The mode of each socket.
pub const SOCKET_MODE: u32 = 0o600;

/// Why the folder cannot be used.
#[derive(Debug)]
pub enum DirError {
    /// Owned by another user.
    NotOurs { path: PathBuf, owner: u32, uid: u32 },
    /// Group or others have access (or the owner lacks it).
    Mode { path: PathBuf, mode: u32 },
    /// A symbolic link, a file, or anything but a folder.
    NotAFolder(PathBuf),
    /// Could not be created or inspected.
    Io { path: PathBuf, error: io::Error },
}

impl fmt::Display for DirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirError::NotOurs { path, owner, uid } => write!(
                f,
                "refusing the trace folder {}: it belongs to uid {owner}, not to this user (uid {uid})",
                path.display()
            ),
            DirError::Mode { path, mode } => write!(
                f,
                "refusing the trace folder {}: its mode is {mode:04o}, not 0700 (chmod 700 it, or remove it)",
                path.display()
            ),
            DirError::NotAFolder(path) => write!(
                f,
                "refusing the trace folder {}: it is not a folder (a symbolic link or a file)",
                path.display()
            ),
            DirError::Io { path, error } => {
                write!(f, "cannot use the trace folder {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for DirError {}

/// This process's effective user id.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Creates `dir` (mode 0700, not its parents) if it does not exist, then checks it is ours.
pub fn prepare(dir: &Path) -> Result<(), DirError> {
    match fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => {
            return Err(DirError::Io {
                path: dir.to_owned(),
                error,
            })
        }
    }
    check(dir, euid())
}

/// Checks that `dir` is a folder (not a link) owned by `uid`, with mode 0700.
pub fn check(dir: &Path, uid: u32) -> Result<(), DirError> {
    let meta = fs::symlink_metadata(dir).map_err(|error| DirError::Io {
        path: dir.to_owned(),
        error,
    })?;
    if !meta.file_type().is_dir() {
        return Err(DirError::NotAFolder(dir.to_owned()));
    }
    if meta.uid() != uid {
        return Err(DirError::NotOurs {
            path: dir.to_owned(),
            owner: meta.uid(),
            uid,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode != DIR_MODE {
        return Err(DirError::Mode {
            path: dir.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// The socket of process `pid` in `dir`.
pub fn socket_path(dir: &Path, pid: u32) -> PathBuf {
    dir.join(format!("{pid}.sock"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fresh folder under the system's temporary folder, removed by the caller.
    pub(crate) fn scratch(name: &str) -> PathBuf {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "panoptic-core-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir(&p).unwrap();
        p
    }

    #[test]
    fn creates_a_private_folder_and_accepts_it_again() {
        let base = scratch("dir");
        let dir = base.join("panoptic");
        prepare(&dir).unwrap();
        let meta = fs::metadata(&dir).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        prepare(&dir).unwrap();
        assert_eq!(socket_path(&dir, 42), dir.join("42.sock"));
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn refuses_open_modes_links_files_and_foreign_owners() {
        let base = scratch("refuse");
        let open = base.join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
        let e = prepare(&open).unwrap_err();
        assert!(matches!(e, DirError::Mode { mode: 0o755, .. }), "{e}");
        assert!(e.to_string().contains("0755, not 0700"), "{e}");

        let target = base.join("target");
        fs::create_dir(&target).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o700)).unwrap();
        let link = base.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(prepare(&link), Err(DirError::NotAFolder(_))));

        let file = base.join("file");
        fs::write(&file, b"").unwrap();
        assert!(matches!(prepare(&file), Err(DirError::NotAFolder(_))));

        let other = euid().wrapping_add(1);
        let e = check(&target, other).unwrap_err();
        assert!(matches!(e, DirError::NotOurs { .. }), "{e}");
        assert!(
            e.to_string()
                .contains(&format!("not to this user (uid {other})")),
            "{e}"
        );

        assert!(matches!(
            prepare(&base.join("no/such")),
            Err(DirError::Io { .. })
        ));
        fs::remove_dir_all(base).unwrap();
    }
}
