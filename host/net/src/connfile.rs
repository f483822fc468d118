//! Connection files and the profile folder that holds them, as in
//! ipyparallel's `security/ipcontroller-client.json`: the controller writes
//! where it listens, its certificate's fingerprint and a secret token, and
//! clients and engines read them to connect.
//!
//! The token is a secret, so files are written with mode 0600 inside a
//! `security/` folder with mode 0700 (on unix), and atomically, so that a
//! reader never sees half a file.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::NetError;
use crate::tls::parse_fingerprint;

/// How to reach and authenticate to a controller.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionFile {
    /// Where the controller listens.
    pub address: SocketAddr,
    /// The sha256 fingerprint of the controller's certificate, lowercase hex.
    pub fingerprint: String,
    /// The secret a peer presents on its first stream.
    pub token: String,
    /// The abstract name of the controller's same-host channel
    /// (`same_host`): a peer that can reach it moves big values as memory
    /// files rather than through QUIC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_host: Option<String>,
}

impl std::fmt::Debug for ConnectionFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionFile")
            .field("address", &self.address)
            .field("fingerprint", &self.fingerprint)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl ConnectionFile {
    /// Writes the file as JSON with mode 0600, creating missing parent
    /// folders with mode 0700. The file is written beside its final name and
    /// renamed over it, so readers see the old file or the new one.
    pub fn write(&self, path: &Path) -> Result<(), NetError> {
        let mut json = serde_json::to_vec_pretty(self).expect("a connection file serializes");
        json.push(b'\n');
        write_private(path, &json)
    }

    /// Reads a connection file, checking the fingerprint's form. Errors name
    /// the path and what is wrong.
    pub fn read(path: &Path) -> Result<Self, NetError> {
        let bytes = fs::read(path).map_err(|source| NetError::ReadConnectionFile {
            path: path.to_owned(),
            source,
        })?;
        let malformed = |reason: String| NetError::MalformedConnectionFile {
            path: path.to_owned(),
            reason,
        };
        let mut file: ConnectionFile =
            serde_json::from_slice(&bytes).map_err(|err| malformed(err.to_string()))?;
        file.fingerprint =
            parse_fingerprint(&file.fingerprint).map_err(|err| malformed(err.to_string()))?;
        if file.token.is_empty() {
            return Err(malformed("the token is empty".to_owned()));
        }
        Ok(file)
    }
}

#[cfg(unix)]
fn private_file_options() -> fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    options
}

#[cfg(not(unix))]
fn private_file_options() -> fs::OpenOptions {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    options
}

/// Creates `dir` and any missing parents with mode 0700 (unix).
fn create_private_dir_all(dir: &Path) -> Result<(), NetError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| NetError::Write {
        path: dir.to_owned(),
        source,
    })
}

/// Writes `bytes` to `path` with mode 0600, creating missing parent folders
/// with mode 0700. The file is written beside its final name and renamed
/// over it, so readers see the old file or the new one. For secrets:
/// connection files and the controller's tenants file.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), NetError> {
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| NetError::Write { path, source }
    };
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private_dir_all(parent)?;

    // Unique per process and call, so concurrent writers do not share a
    // temporary file.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let file_name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = parent.join(format!(
        ".{file_name}.{}.{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = private_file_options().open(&tmp).map_err(write_err(&tmp))?;
        file.write_all(bytes).map_err(write_err(&tmp))?;
        file.sync_all().map_err(write_err(&tmp))?;
        fs::rename(&tmp, path).map_err(write_err(path))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// A profile folder: one controller's state and connection files, so that
/// several clusters can live side by side (`--profile`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    dir: PathBuf,
}

impl Profile {
    /// The profile named `name`: `$WASP_DIR/profile_<name>` if `WASP_DIR`
    /// is set, else `~/.wasp/profile_<name>`. Names are single path
    /// components: no separators, not empty, not `.` or `..`.
    pub fn new(name: &str) -> Result<Self, NetError> {
        let valid = !name.is_empty()
            && name != "."
            && name != ".."
            && !name.contains(['/', '\\'])
            && !name.contains('\0');
        if !valid {
            return Err(NetError::Profile {
                reason: format!("invalid profile name {name:?}"),
            });
        }
        let base = match std::env::var_os("WASP_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => std::env::home_dir()
                .filter(|home| !home.as_os_str().is_empty())
                .ok_or_else(|| NetError::Profile {
                    reason: "no home directory; set WASP_DIR".to_owned(),
                })?
                .join(".wasp"),
        };
        Ok(Profile::at(base.join(format!("profile_{name}"))))
    }

    /// The profile in `dir`, e.g. a fresh temporary folder in tests.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Profile { dir: dir.into() }
    }

    /// The profile folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The folder holding connection files and keys.
    pub fn security_dir(&self) -> PathBuf {
        self.dir.join("security")
    }

    /// The file clients read: `security/wasp-client.json`.
    pub fn client_file(&self) -> PathBuf {
        self.security_dir().join("wasp-client.json")
    }

    /// The file engines read: `security/wasp-engine.json`.
    pub fn engine_file(&self) -> PathBuf {
        self.security_dir().join("wasp-engine.json")
    }

    /// Creates the profile folder and `security/`, both with mode 0700
    /// (unix), and restricts existing ones to 0700 as well: the profile
    /// holds the tokens, and every tenant's results and captured output
    /// (`tasks.sqlite`).
    pub fn create(&self) -> Result<(), NetError> {
        let security = self.security_dir();
        create_private_dir_all(&security)?;
        restrict(&self.dir, 0o700)?;
        restrict(&security, 0o700)
    }
}

/// Sets `path`'s permission bits to `mode` (unix; elsewhere nothing).
fn restrict(path: &Path, mode: u32) -> Result<(), NetError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|source| {
            NetError::Write {
                path: path.to_owned(),
                source,
            }
        })?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Makes sure `path` exists with mode 0600 whatever the umask: creates it
/// empty (and its missing parents 0700) if missing, else restricts it to
/// 0600. For a file another library opens with the default mode, such as
/// the controller's SQLite database: SQLite creates a new database in an
/// existing empty file, and gives its `-wal` and `-shm` files the
/// database's own mode.
pub fn create_private_file(path: &Path) -> Result<(), NetError> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private_dir_all(parent)?;
    match private_file_options().open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => restrict(path, 0o600),
        Err(source) => Err(NetError::Write {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ConnectionFile {
        ConnectionFile {
            address: "127.0.0.1:4433".parse().expect("address"),
            fingerprint: "ab".repeat(32),
            token: "s3cret".to_owned(),
            same_host: Some("wasp-0123".to_owned()),
        }
    }

    /// A file from before the same-host channel, or from a controller
    /// without one, reads as a file without it.
    #[test]
    fn a_file_without_a_same_host_channel_reads_as_none() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("wasp-client.json");
        let file = ConnectionFile {
            same_host: None,
            ..sample()
        };
        file.write(&path).expect("writes");
        let text = fs::read_to_string(&path).expect("reads");
        assert!(!text.contains("same_host"), "{text}");
        assert_eq!(ConnectionFile::read(&path).expect("reads"), file);
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).expect("exists").permissions().mode() & 0o777
    }

    #[test]
    fn write_then_read_round_trips_with_private_modes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let profile = Profile::at(tmp.path().join("profile_default"));
        let file = sample();
        file.write(&profile.client_file()).expect("writes");
        assert_eq!(
            ConnectionFile::read(&profile.client_file()).expect("reads"),
            file
        );
        #[cfg(unix)]
        {
            assert_eq!(mode(&profile.client_file()), 0o600);
            assert_eq!(mode(&profile.security_dir()), 0o700);
        }

        // Overwriting replaces the file and leaves no temporary behind.
        let newer = ConnectionFile {
            token: "rotated".to_owned(),
            ..sample()
        };
        newer.write(&profile.client_file()).expect("rewrites");
        assert_eq!(
            ConnectionFile::read(&profile.client_file()).expect("reads"),
            newer
        );
        let names: Vec<_> = fs::read_dir(profile.security_dir())
            .expect("lists")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["wasp-client.json"]);
        assert!(!format!("{newer:?}").contains("rotated"));
    }

    #[test]
    fn read_errors_name_the_path_and_the_problem() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let missing = tmp.path().join("nope.json");
        let err = ConnectionFile::read(&missing).expect_err("missing");
        assert!(
            matches!(err, NetError::ReadConnectionFile { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&*missing.to_string_lossy()),
            "{err}"
        );

        let cases: [(&str, &str); 4] = [
            ("{not json", "key must be a string"),
            (
                r#"{"address": "127.0.0.1:1", "token": "t"}"#,
                "missing field `fingerprint`",
            ),
            (
                r#"{"address": "nowhere", "fingerprint": "", "token": "t"}"#,
                "invalid socket address",
            ),
            (
                r#"{"address": "127.0.0.1:1", "fingerprint": "abc", "token": "t"}"#,
                "64 hex digits",
            ),
        ];
        for (i, (text, problem)) in cases.into_iter().enumerate() {
            let path = tmp.path().join(format!("bad{i}.json"));
            fs::write(&path, text).expect("writes");
            let err = ConnectionFile::read(&path).expect_err("malformed");
            let msg = err.to_string();
            assert!(
                matches!(err, NetError::MalformedConnectionFile { .. }),
                "{err:?}"
            );
            assert!(msg.contains(&*path.to_string_lossy()), "{msg}");
            assert!(msg.contains(problem), "{msg}");
        }
    }

    #[test]
    fn profile_paths() {
        let profile = Profile::at("/srv/wasp/profile_x");
        assert_eq!(profile.dir(), Path::new("/srv/wasp/profile_x"));
        assert_eq!(
            profile.client_file(),
            Path::new("/srv/wasp/profile_x/security/wasp-client.json")
        );
        assert_eq!(
            profile.engine_file(),
            Path::new("/srv/wasp/profile_x/security/wasp-engine.json")
        );
        for bad in ["", ".", "..", "a/b", "a\\b"] {
            assert!(Profile::new(bad).is_err(), "{bad:?}");
        }
        // Profile::new reads WASP_DIR/HOME; tests do not set process-wide
        // variables, so only check the shape of what it resolves to.
        if let Ok(profile) = Profile::new("default") {
            assert!(profile.dir().ends_with("profile_default"));
        }
    }

    #[cfg(unix)]
    #[test]
    fn create_makes_private_folders() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tempdir");
        let profile = Profile::at(tmp.path().join("p"));
        fs::create_dir_all(profile.security_dir()).expect("creates");
        fs::set_permissions(profile.security_dir(), fs::Permissions::from_mode(0o755))
            .expect("chmod");
        fs::set_permissions(profile.dir(), fs::Permissions::from_mode(0o755)).expect("chmod");
        profile.create().expect("creates");
        assert_eq!(mode(&profile.security_dir()), 0o700);
        assert_eq!(mode(profile.dir()), 0o700, "the profile folder itself");

        let fresh = Profile::at(tmp.path().join("fresh"));
        fresh.create().expect("creates");
        assert_eq!(mode(fresh.dir()), 0o700);
        assert_eq!(mode(&fresh.security_dir()), 0o700);
    }

    #[cfg(unix)]
    #[test]
    fn create_private_file_makes_or_restricts_a_0600_file() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tempdir");
        let new = tmp.path().join("p/tasks.sqlite");
        create_private_file(&new).expect("creates");
        assert_eq!(mode(&new), 0o600);
        assert_eq!(mode(new.parent().expect("parent")), 0o700);
        assert_eq!(fs::metadata(&new).expect("exists").len(), 0);

        let old = tmp.path().join("old.sqlite");
        fs::write(&old, b"kept").expect("writes");
        fs::set_permissions(&old, fs::Permissions::from_mode(0o644)).expect("chmod");
        create_private_file(&old).expect("restricts");
        assert_eq!(mode(&old), 0o600);
        assert_eq!(fs::read(&old).expect("reads"), b"kept", "contents kept");
    }
}
