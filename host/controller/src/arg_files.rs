//! Big task arguments, kept as files beside the task database rather than
//! in it: one file per task, `PROFILE/args/s3-17.args`, written once when
//! the task is recorded and removed when its record goes.
//!
//! Why not in SQLite: a blob of 8 MB is 2,000 overflow pages, each a WAL
//! frame with its checksum and a write of its own, written again into the
//! database by the next checkpoint, through a page cache whose memory the
//! records thread's allocator keeps. Measured with `bigvalues` (typed
//! `norm` of 8 MB): the controller's peak memory went from 1.3x the
//! argument without recorded arguments to 10x with them in SQLite, and the
//! records thread's CPU, beside the next transfer on 2 cores, made each
//! hop 5 ms slower. A file is one `write` from the bytes the task already
//! holds, into the kernel's page cache, which is not the controller's
//! memory.
//!
//! Durability is SQLite's with `synchronous = NORMAL`: a file is written
//! before the row that names it is committed, so a controller killed at
//! any point leaves no row without its file (only, at worst, a file
//! without a row, removed at the next start by [`ArgFiles::sweep`]). A
//! power cut may lose what the kernel had not written yet, as it may lose
//! the last transactions; a task whose file is gone then fails, saying so.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use wasp_proto::TaskId;

/// Arguments at least this large are kept as a file: 64 KiB, the size at
/// which a list travels as its own part of a frame
/// (`wasp_proto::codec::SLICE_AT_LEAST`). Below it a blob is a few pages
/// of the database, cheaper than a file of its own.
pub(crate) const IN_FILE_AT_LEAST: usize = 64 * 1024;

/// The folder of argument files.
#[derive(Clone, Debug)]
pub(crate) struct ArgFiles {
    dir: PathBuf,
}

/// The file name suffix of an argument file.
const SUFFIX: &str = ".args";

impl ArgFiles {
    /// The files in `dir` (created when the first is written).
    pub(crate) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// The folder of argument files in the profile folder `profile_dir`.
    pub(crate) fn dir_in(profile_dir: &Path) -> PathBuf {
        profile_dir.join("args")
    }

    /// Where task `id`'s arguments are kept.
    pub(crate) fn path(&self, id: TaskId) -> PathBuf {
        self.dir.join(format!("{id}{SUFFIX}"))
    }

    /// Writes task `id`'s arguments, replacing any file of the same task
    /// (one left by a controller killed before it committed the row).
    pub(crate) fn write(&self, id: TaskId, bytes: &[u8]) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        // From the client's memory file, when they came in one.
        wasp_net::same_host::write_to(&mut std::fs::File::create(self.path(id))?, bytes)
    }

    /// Reads task `id`'s arguments; the error names the file.
    pub(crate) fn read(&self, id: TaskId) -> io::Result<Vec<u8>> {
        let path = self.path(id);
        std::fs::read(&path).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("the arguments of task {id}, {}: {err}", path.display()),
            )
        })
    }

    /// Removes the files of `ids`; one already gone is not an error, and
    /// any other failure is logged, not returned (a file left behind is
    /// swept at the next start).
    pub(crate) fn remove(&self, ids: &[TaskId]) {
        for &id in ids {
            let path = self.path(id);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => {
                    tracing::warn!(path = %path.display(), cause = %err, "an argument file could not be removed")
                }
            }
        }
    }

    /// Removes every argument file whose task is not in `kept`: those of a
    /// controller killed between writing a file and committing its row,
    /// or between deleting rows and their files. Returns how many went.
    pub(crate) fn sweep(&self, kept: &HashSet<TaskId>) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let stale: Vec<TaskId> = entries
            .filter_map(|entry| {
                let name = entry.ok()?.file_name();
                let id: TaskId = name.to_str()?.strip_suffix(SUFFIX)?.parse().ok()?;
                (!kept.contains(&id)).then_some(id)
            })
            .collect();
        self.remove(&stale);
        stale.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_read_swept_and_removed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = ArgFiles::new(&dir.path().join("args"));
        let (kept, stale) = (TaskId::new(3, 17), TaskId::new(3, 18));
        files.write(kept, b"kept").expect("writes");
        files.write(stale, b"stale").expect("writes");
        assert_eq!(files.read(kept).expect("reads"), b"kept");
        assert!(files.path(kept).ends_with("s3-17.args"));

        // A file that is not an argument file is left alone.
        std::fs::write(dir.path().join("args/notes.txt"), b"x").expect("writes");
        assert_eq!(files.sweep(&HashSet::from([kept])), 1);
        assert!(files.path(kept).exists());
        assert!(!files.path(stale).exists());
        assert!(dir.path().join("args/notes.txt").exists());

        files.remove(&[kept, stale]);
        let err = files.read(kept).expect_err("gone");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("s3-17.args"), "{err}");
    }
}
