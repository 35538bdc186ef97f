//! Reading the user's inputs with errors that name them: files, and the collection
//! databases that `pingyi score` and `pingyi aggregate` read like files.

use std::cell::{Cell, RefCell};
use std::io::Read;
use std::path::Path;

use analysis::files::BallotSource;
use analysis::{Ballot, Form, InputError};
use anyhow::Context;
use pingyi_server::store::{Database, ReadError, Reader};

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

/// The ballots of a collection database, read one row at a time for `pingyi score` and
/// `pingyi aggregate` (and counted, for the summary).
pub struct DatabaseSource {
    name: String,
    reader: RefCell<Reader>,
    /// Ballots handed over by the last read.
    read: Cell<u64>,
}

impl DatabaseSource {
    /// Opens an existing database; a missing one is an error, never created.
    pub fn open(db: &Database) -> anyhow::Result<DatabaseSource> {
        let reader = Reader::open(db)?;
        Ok(DatabaseSource {
            name: reader.name().to_string(),
            reader: RefCell::new(reader),
            read: Cell::new(0),
        })
    }

    /// One line saying what was read, and what the database holds that was not (ballots
    /// of other forms or versions, which need their own `--form`).
    pub fn summary(&self, form: &Form) -> anyhow::Result<String> {
        let others: Vec<String> = self
            .reader
            .borrow_mut()
            .forms()?
            .into_iter()
            .filter(|f| f.ballots > 0 && !(f.form.id == form.id && f.form.version == form.version))
            .map(|f| format!("{} version {} ({})", f.form.id, f.form.version, f.ballots))
            .collect();
        let mut line = format!(
            "{}: {} ballots of form {} version {} read",
            self.name,
            self.read.get(),
            form.id,
            form.version
        );
        if !others.is_empty() {
            line.push_str(&format!(
                "; not read, being of other forms or versions (score each with its own --form): {}",
                others.join(", ")
            ));
        }
        Ok(line)
    }
}

impl BallotSource for DatabaseSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn each_ballot(
        &self,
        form: &Form,
        each: &mut dyn FnMut(&Ballot) -> Result<(), InputError>,
    ) -> Result<(), InputError> {
        let mut n = 0u64;
        let result = self
            .reader
            .borrow_mut()
            .ballots(&form.id, &form.version, |json| {
                let ballot: Ballot = serde_json::from_str(json).map_err(|e| {
                    InputError::new(
                        &self.name,
                        format!(
                            "a stored ballot is not a ballot ({}): {}",
                            analysis::error::json_message(&e),
                            analysis::error::cut(json)
                        ),
                    )
                })?;
                n += 1;
                each(&ballot)
            });
        self.read.set(n);
        result.map_err(|e| match e {
            ReadError::Store(e) => InputError::new(&self.name, e.to_string()),
            ReadError::Stopped(e) => e,
        })
    }
}
