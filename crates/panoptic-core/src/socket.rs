//! Private Unix sockets, shared by the tracing socket ([`crate::trace::server`]) and the cluster
//! transport ([`crate::transport`]): the per-user folder that holds them, binding one with
//! owner-only permissions, the peer's credentials, and a send that cannot raise SIGPIPE.
//!
//! The JS side picks the folder (`$XDG_RUNTIME_DIR/panoptic`, else `<os.tmpdir()>/panoptic-<uid>`);
//! this module makes sure it is safe to use. In a shared temporary folder anyone may have created
//! that path first, so an existing folder is used only when it is a real folder (not a symbolic
//! link), owned by this process's effective user, with mode 0700. Anything else is refused: a
//! folder another user controls could hand us a fake process, or read what we send.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The mode of the folder; sockets in it get [`SOCKET_MODE`].
pub const DIR_MODE: u32 = 0o700;
/// The mode of each socket.
pub const SOCKET_MODE: u32 = 0o600;

/// Why the folder cannot be used; `what` names it for the user ("trace folder").
#[derive(Debug)]
pub enum DirError {
    /// Owned by another user.
    NotOurs {
        what: &'static str,
        path: PathBuf,
        owner: u32,
        uid: u32,
    },
    /// Group or others have access (or the owner lacks it).
    Mode {
        what: &'static str,
        path: PathBuf,
        mode: u32,
    },
    /// A symbolic link, a file, or anything but a folder.
    NotAFolder { what: &'static str, path: PathBuf },
    /// Could not be created or inspected.
    Io {
        what: &'static str,
        path: PathBuf,
        error: io::Error,
    },
}

impl fmt::Display for DirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirError::NotOurs {
                what,
                path,
                owner,
                uid,
            } => write!(
                f,
                "refusing the {what} {}: it belongs to uid {owner}, not to this user (uid {uid})",
                path.display()
            ),
            DirError::Mode { what, path, mode } => write!(
                f,
                "refusing the {what} {}: its mode is {mode:04o}, not 0700 (chmod 700 it, or remove it)",
                path.display()
            ),
            DirError::NotAFolder { what, path } => write!(
                f,
                "refusing the {what} {}: it is not a folder (a symbolic link or a file)",
                path.display()
            ),
            DirError::Io { what, path, error } => {
                write!(f, "cannot use the {what} {}: {error}", path.display())
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
pub fn prepare(dir: &Path, what: &'static str) -> Result<(), DirError> {
    match fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => {
            return Err(DirError::Io {
                what,
                path: dir.to_owned(),
                error,
            })
        }
    }
    check(dir, euid(), what)
}

/// Checks that `dir` is a folder (not a link) owned by `uid`, with mode 0700.
pub fn check(dir: &Path, uid: u32, what: &'static str) -> Result<(), DirError> {
    let path = || dir.to_owned();
    let meta = fs::symlink_metadata(dir).map_err(|error| DirError::Io {
        what,
        path: path(),
        error,
    })?;
    if !meta.file_type().is_dir() {
        return Err(DirError::NotAFolder { what, path: path() });
    }
    if meta.uid() != uid {
        return Err(DirError::NotOurs {
            what,
            path: path(),
            owner: meta.uid(),
            uid,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode != DIR_MODE {
        return Err(DirError::Mode {
            what,
            path: path(),
            mode,
        });
    }
    Ok(())
}

/// The socket of process `pid` in `dir`, `<pid><suffix>` (".sock" for tracing).
pub fn socket_path(dir: &Path, pid: u32, suffix: &str) -> PathBuf {
    dir.join(format!("{pid}{suffix}"))
}

/// Binds `path` (in a folder [`prepare`]d) with mode 0600, replacing a stale socket: the folder
/// is ours and private, and a live process never shares our pid, so whatever has this name is a
/// leftover (a process killed by a signal does not remove its socket). The error says what
/// failed, with the path.
pub fn bind(path: &Path) -> Result<UnixListener, String> {
    let fail = |what: &str, e: io::Error| format!("{what} {}: {e}", path.display());
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail("cannot replace", e)),
    }
    let listener = UnixListener::bind(path).map_err(|e| fail("cannot listen on", e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(|e| fail("cannot set the mode of", e))?;
    Ok(listener)
}

/// Whether a peer running as `peer` may attach to a process running as `me` (root may: it can
/// read any process anyway).
pub fn peer_allowed(peer: u32, me: u32) -> bool {
    peer == me || peer == 0
}

/// Who is at the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub pid: u32,
}

/// The peer's credentials where the platform tells them (`SO_PEERCRED`); elsewhere (None) the
/// folder and socket modes are the only gate.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn peer(stream: &UnixStream) -> io::Result<Option<Peer>> {
    let cred = rustix::net::sockopt::socket_peercred(stream)?;
    Ok(Some(Peer {
        uid: cred.uid.as_raw(),
        pid: cred.pid.as_raw_nonzero().get() as u32,
    }))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn peer(_stream: &UnixStream) -> io::Result<Option<Peer>> {
    Ok(None)
}

/// Writes all of `buf`, adding to `written` the bytes the kernel took (on failure, the frames
/// wholly before that point were still delivered). On Linux with `MSG_NOSIGNAL`, so a peer that
/// went away is an error and never a SIGPIPE, whatever the host process does with that signal
/// (Node ignores it; an embedder might not).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn write_all(stream: &UnixStream, mut buf: &[u8], written: &mut usize) -> io::Result<()> {
    use rustix::net::{send, SendFlags};
    while !buf.is_empty() {
        match send(stream, buf, SendFlags::NOSIGNAL) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                *written += n;
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn write_all(mut stream: &UnixStream, mut buf: &[u8], written: &mut usize) -> io::Result<()> {
    while !buf.is_empty() {
        match io::Write::write(&mut stream, buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                *written += n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
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
        prepare(&dir, "trace folder").unwrap();
        let meta = fs::metadata(&dir).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        prepare(&dir, "trace folder").unwrap();
        assert_eq!(socket_path(&dir, 42, ".sock"), dir.join("42.sock"));
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn peers_of_other_users_are_refused_but_root_is_not() {
        assert!(peer_allowed(1000, 1000));
        assert!(peer_allowed(0, 1000));
        assert!(!peer_allowed(1001, 1000));
        assert!(!peer_allowed(1000, 0));
    }

    #[test]
    fn refuses_open_modes_links_files_and_foreign_owners() {
        let base = scratch("refuse");
        let open = base.join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
        let e = prepare(&open, "trace folder").unwrap_err();
        assert!(matches!(e, DirError::Mode { mode: 0o755, .. }), "{e}");
        assert!(e.to_string().contains("0755, not 0700"), "{e}");

        let target = base.join("target");
        fs::create_dir(&target).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o700)).unwrap();
        let link = base.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            prepare(&link, "trace folder"),
            Err(DirError::NotAFolder { .. })
        ));

        let file = base.join("file");
        fs::write(&file, b"").unwrap();
        assert!(matches!(
            prepare(&file, "trace folder"),
            Err(DirError::NotAFolder { .. })
        ));

        let other = euid().wrapping_add(1);
        let e = check(&target, other, "trace folder").unwrap_err();
        assert!(matches!(e, DirError::NotOurs { .. }), "{e}");
        assert!(
            e.to_string()
                .contains(&format!("not to this user (uid {other})")),
            "{e}"
        );

        assert!(matches!(
            prepare(&base.join("no/such"), "trace folder"),
            Err(DirError::Io { .. })
        ));
        fs::remove_dir_all(base).unwrap();
    }
}
