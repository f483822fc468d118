//! The on-disk compile cache: wasmtime's serialized artifacts, keyed by the
//! module's sha256 and the engine's configuration, so a second process (or
//! a restarted engine) loads a known module without recompiling.
//!
//! Files are written to a temporary name and renamed into place, so a reader
//! never sees a partial artifact. The directory must be private to wasp:
//! loading an artifact runs the native code in it.

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::Engine;
use wasmtime::component::Component;
use wasp_proto::ModuleHash;

/// A directory of compiled components for one engine configuration.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    /// Identifies the engine configuration and wasmtime version, so an
    /// artifact compiled with other settings is never picked up.
    engine_key: String,
}

impl DiskCache {
    pub(crate) fn open(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir: dir.to_owned(),
            engine_key: format!("{:016x}", hasher.finish()),
        })
    }

    fn path(&self, hash: &ModuleHash) -> PathBuf {
        self.dir.join(format!("{hash}-{}.cwasm", self.engine_key))
    }

    /// Loads a cached artifact, or `None` if there is none or it is stale.
    pub(crate) fn load(&self, engine: &Engine, hash: &ModuleHash) -> Option<Component> {
        let path = self.path(hash);
        if !path.exists() {
            return None;
        }
        // SAFETY: deserializing runs native code from the file. The file was
        // written by `store` below, from our own compilation, into a
        // directory only this user can write (mode 0700), under a name keyed
        // by the engine configuration; wasmtime also checks its header and
        // compatibility before use.
        #[expect(unsafe_code, reason = "loading our own compiled artifacts")]
        let loaded = unsafe { Component::deserialize_file(engine, &path) };
        match loaded {
            Ok(component) => Some(component),
            Err(err) => {
                tracing::warn!(path = %path.display(), cause = %err, "ignoring unusable cached artifact");
                None
            }
        }
    }

    /// The modules this cache holds for this engine configuration.
    pub(crate) fn hashes(&self) -> Vec<ModuleHash> {
        let suffix = format!("-{}.cwasm", self.engine_key);
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(&suffix)?.parse().ok()
            })
            .collect()
    }

    /// Stores a compiled component's artifact.
    pub(crate) fn store(&self, hash: &ModuleHash, component: &Component) -> std::io::Result<()> {
        let bytes = component.serialize().map_err(std::io::Error::other)?;
        let path = self.path(hash);
        let mut tmp = tempfile_in(&self.dir, &path)?;
        tmp.1.write_all(&bytes)?;
        tmp.1.sync_all()?;
        fs::rename(&tmp.0, &path)
    }
}

/// A uniquely named temporary file beside `target`.
fn tempfile_in(dir: &Path, target: &Path) -> std::io::Result<(PathBuf, fs::File)> {
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("artifact");
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let unique = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{unique}.tmp", std::process::id()));
    let file = fs::File::create(&tmp)?;
    Ok((tmp, file))
}
