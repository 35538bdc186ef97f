//! Reading the user's inputs with errors that name them: files, and the collection
//! databases that `pingyi score` and `pingyi aggregate` read like files.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
pub use pingyi_server::dashboard::DatabaseSource;
use pingyi_server::store::Database;

/// Fails with "cannot read FILE: why" when the file cannot even be opened.
fn openable(path: &Path) -> anyhow::Result<()> {
    std::fs::File::open(path)
        .map(drop)
        .with_context(|| format!("cannot read {}", path.display()))
}

/// Reads a text file as UTF-8 without its BOM: UTF-8 as it is, UTF-16 transcoded, any
/// other encoding refused with the fix ([`analysis::files::read_text`]).
pub fn read_text(path: &Path) -> anyhow::Result<String> {
    openable(path)?;
    Ok(analysis::files::read_text(path)?)
}

/// Opens a text file for streaming as UTF-8 ([`analysis::files::open_text`]).
pub fn open_text(path: &Path) -> anyhow::Result<impl Read + Send> {
    openable(path)?;
    Ok(std::io::BufReader::new(analysis::files::open_text(path)?))
}

/// The first bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";

/// The database an input names, if it names one: `sqlite:PATH`, `postgres://…`,
/// `postgresql://…`, or an existing file that is an SQLite database (`campaign.db`).
pub fn database_of(arg: &Path) -> anyhow::Result<Option<Database>> {
    let text = arg.to_string_lossy();
    if ["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|prefix| text.starts_with(prefix))
    {
        return Ok(Some(Database::parse(&text)?));
    }
    let mut head = [0u8; 16];
    let is_sqlite = std::fs::File::open(arg)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == SQLITE_MAGIC);
    Ok(is_sqlite.then(|| Database::Sqlite(arg.to_path_buf())))
}
