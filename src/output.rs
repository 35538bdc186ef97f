//! Writing the command line's files: atomically, never over one of the run's inputs, and
//! cleaning up what a killed run left behind.
//!
//! Every file goes first to a hidden temporary beside it, `.NAME.pingyi-PID-XXXXXX.tmp`
//! (PID is the writing process), which is flushed, synced to disk and then renamed over
//! NAME: the target holds its old content or the whole new one, never a half-written
//! file, and an error part way leaves it untouched. A run killed before the rename leaves
//! its temporary behind; the next run that writes into the same folder removes those
//! whose process is gone (on unix; elsewhere they are left for the user to delete).
//!
//! Before anything is read or written, an output that is one of the inputs (the same
//! path, a symbolic link to it, or a hard link of it) is refused.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// What marks Pingyi's temporaries, between the target's name and the PID.
const TEMP_MARK: &str = ".pingyi-";
/// The end of a temporary's name.
const TEMP_END: &str = ".tmp";
/// Random characters tempfile puts in a name.
const TEMP_RANDOM: usize = 6;

/// Refuses `output` when it is one of `inputs`: the same path, a symbolic link to it, or
/// a hard link of it (compared by canonical path and by device and inode).
pub fn refuse_inputs(output: &Path, inputs: &[&Path]) -> anyhow::Result<()> {
    for input in inputs {
        if is_same_file(output, input) {
            bail!(
                "{}: is also an input ({}), expected a new file for the output: writing it would replace what is being read; choose another name",
                output.display(),
                input.display()
            );
        }
    }
    Ok(())
}

fn is_same_file(a: &Path, b: &Path) -> bool {
    if let (Ok(x), Ok(y)) = (a.canonicalize(), b.canonicalize()) {
        if x == y {
            return true;
        }
    }
    same_file::is_same_file(a, b).unwrap_or(false)
}

/// Writes a file through a temporary beside it (see the module doc): `write` gets a
/// buffered writer; the file appears at `path` only when `write` succeeded and the data
/// is on disk, and `write`'s result is given back. On any error the target is left as it
/// was and the temporary is removed.
pub fn write_atomically<T>(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let shown = path.display();
    if path.is_dir() {
        bail!("{shown}: is a folder, expected the name of a file to write, such as out.csv");
    }
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        bail!("{shown}: is not a file name, expected a path such as out/scores.json");
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    remove_stale_temporaries(&dir);
    let mut builder = tempfile::Builder::new();
    let prefix = format!(".{name}{TEMP_MARK}{}-", std::process::id());
    builder
        .prefix(&prefix)
        .suffix(TEMP_END)
        .rand_bytes(TEMP_RANDOM);
    #[cfg(unix)]
    {
        // As `std::fs::write` would create it: readable by others unless the umask says no.
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(&dir).with_context(|| {
        format!(
            "cannot write {shown}: cannot create a file in {}",
            dir.display()
        )
    })?;
    let result = {
        let mut out = BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        let result = write(&mut out)?;
        out.flush()
            .with_context(|| format!("cannot write {shown}"))?;
        result
    };
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("cannot write {shown}: syncing to disk failed"))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {shown}"))?;
    // The rename itself is durable once the folder is synced (not possible everywhere).
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(result)
}

/// Writes `bytes` to `path` atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomically(path, |out| {
        out.write_all(bytes)
            .with_context(|| format!("cannot write {}", path.display()))
    })
}

/// Removes the temporaries in `dir` that a killed run left (their process is gone).
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temporary_pid) else {
            continue;
        };
        if !process_alive(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The PID in a temporary's name `.NAME.pingyi-PID-XXXXXX.tmp`, `None` for other names.
fn temporary_pid(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?.strip_suffix(TEMP_END)?;
    let (_, tail) = rest.rsplit_once(TEMP_MARK)?;
    let (pid, random) = tail.split_once('-')?;
    let random_ok =
        random.len() == TEMP_RANDOM && random.bytes().all(|b| b.is_ascii_alphanumeric());
    random_ok.then(|| pid.parse().ok())?
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    if pid <= 0 {
        return true;
    }
    // SAFETY: signal 0 sends nothing; kill only checks that the process exists (success,
    // or EPERM for another user's process).
    let found = unsafe { libc::kill(pid, 0) } == 0;
    found || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    // No cheap check here: keep every temporary rather than remove a live one.
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pingyi_temporaries_are_recognised() {
        assert_eq!(temporary_pid(".all.csv.pingyi-4242-a1B2c3.tmp"), Some(4242));
        assert_eq!(temporary_pid(".x.pingyi-1.pingyi-77-zzzzzz.tmp"), Some(77));
        assert_eq!(temporary_pid("all.csv"), None);
        assert_eq!(temporary_pid(".all.csv.pingyi-4242-a1B2c3.tmp.bak"), None);
        assert_eq!(temporary_pid(".all.csv.pingyi-x-a1B2c3.tmp"), None);
        assert_eq!(temporary_pid(".all.csv.pingyi-12-short.tmp"), None);
    }
}
