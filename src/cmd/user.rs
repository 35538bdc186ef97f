//! `pingyi user`: the officials who sign in to the campaign console at /admin/, kept in
//! the collection database: add (with a role), list, remove, change a password. The
//! password is asked twice on the terminal, or read from standard input for scripts; only
//! its argon2id hash is stored. Each change is written to the audit log.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use pingyi_server::auth::{check_name, check_new_password, hash_password, Role};
use pingyi_server::store::{Database, Store};

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

const EXAMPLES: &str = "Examples:
  pingyi user add wang.fang --role admin            asks the password twice
  pingyi user add li.lei --role viewer --database campaign.db
  echo \"$PASSWORD\" | pingyi user add ops --role admin --password-stdin
  pingyi user list
  pingyi user passwd wang.fang
  pingyi user remove li.lei";

#[derive(clap::Subcommand)]
enum Action {
    /// Add an official who can sign in to the console.
    Add {
        name: String,
        /// admin: everything; viewer: sees the dashboard, counts and sources only.
        #[arg(long, value_parser = ["admin", "viewer"])]
        role: String,
        #[command(flatten)]
        db: Db,
        /// Read the password from the first line of standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the officials with their roles.
    List {
        #[command(flatten)]
        db: Db,
    },
    /// Remove an official; their sessions end at once.
    Remove {
        name: String,
        #[command(flatten)]
        db: Db,
    },
    /// Change an official's password; their sessions end at once.
    Passwd {
        name: String,
        #[command(flatten)]
        db: Db,
        /// Read the password from the first line of standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(clap::Args)]
struct Db {
    /// The database `pingyi serve` stores in: sqlite:PATH, a file path, or
    /// postgres://USER@HOST:PORT/DATABASE (default: ./pingyi.db, as `pingyi serve`
    /// without --form; with --form my-form.json serve uses my-form.db).
    #[arg(long, value_name = "URL")]
    database: Option<String>,
}

impl Db {
    fn open(&self) -> anyhow::Result<(Database, tokio::runtime::Runtime, Store)> {
        let db = match &self.database {
            Some(url) => Database::parse(url).map_err(|e| anyhow::anyhow!("--database: {e}"))?,
            None => Database::Sqlite(PathBuf::from("pingyi.db")),
        };
        let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        let store = runtime
            .block_on(Store::open(&db))
            .with_context(|| format!("cannot open the database {db}"))?;
        Ok((db, runtime, store))
    }
}

/// Who ran the command, for the audit log (the audit's address is "cli").
fn operator() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .map(|u| format!("{u} (cli)"))
        .unwrap_or_else(|_| "cli".to_string())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Add {
            name,
            role,
            db,
            password_stdin,
        } => {
            check_name(&name).map_err(anyhow::Error::msg)?;
            let role = Role::parse(&role).map_err(anyhow::Error::msg)?;
            let (db, runtime, store) = db.open()?;
            let taken = || {
                anyhow::anyhow!(
                    "{db}: there is already an official named {name}; choose another name, \
                     or change the password with `pingyi user passwd {name}`"
                )
            };
            // Asked before the password is typed, and again when adding (a race).
            if runtime.block_on(store.credentials(&name))?.is_some() {
                return Err(taken());
            }
            let hash =
                hash_password(&new_password(&name, password_stdin)?).map_err(anyhow::Error::msg)?;
            runtime.block_on(async {
                if !store.add_user(&name, role.as_str(), &hash).await? {
                    return Err(taken());
                }
                let detail = format!("{name} as {role}");
                store
                    .audit(&operator(), "cli", "user_added", &detail)
                    .await?;
                eprintln!("{db}: {name} added as {role}");
                Ok(())
            })?;
        }
        Action::List { db } => {
            let (db, runtime, store) = db.open()?;
            let users = runtime.block_on(store.users())?;
            if users.is_empty() {
                eprintln!(
                    "{db}: no official yet; add one with `pingyi user add NAME --role admin`"
                );
            }
            for u in users {
                println!("{}\t{}\tadded {}", u.name, u.role, u.created_at);
            }
        }
        Action::Remove { name, db } => {
            let (db, runtime, store) = db.open()?;
            runtime.block_on(async {
                if !store.remove_user(&name).await? {
                    bail!("{db}: there is no official named {name}; see `pingyi user list`");
                }
                store
                    .audit(&operator(), "cli", "user_removed", &name)
                    .await?;
                eprintln!("{db}: {name} removed, their sessions ended");
                Ok(())
            })?;
        }
        Action::Passwd {
            name,
            db,
            password_stdin,
        } => {
            let (db, runtime, store) = db.open()?;
            let known = runtime.block_on(store.credentials(&name))?.is_some();
            if !known {
                bail!("{db}: there is no official named {name}; see `pingyi user list`");
            }
            let hash =
                hash_password(&new_password(&name, password_stdin)?).map_err(anyhow::Error::msg)?;
            runtime.block_on(async {
                if !store.set_password(&name, &hash).await? {
                    bail!("{db}: there is no official named {name}; see `pingyi user list`");
                }
                store
                    .audit(&operator(), "cli", "password_changed", &name)
                    .await?;
                eprintln!("{db}: the password of {name} is changed, their sessions ended");
                Ok(())
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The new password: the first line of standard input, or asked twice on the terminal.
fn new_password(name: &str, from_stdin: bool) -> anyhow::Result<String> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        if !std::io::stdin().is_terminal() {
            bail!(
                "no terminal to ask the password on; give it on standard input with \
                 --password-stdin"
            );
        }
        let first = rpassword::prompt_password(format!("Password for {name}: "))
            .context("cannot read the password from the terminal")?;
        check_new_password(&first).map_err(anyhow::Error::msg)?;
        let again = rpassword::prompt_password("The same password again: ")
            .context("cannot read the password from the terminal")?;
        if again != first {
            bail!("the two passwords differ; nothing was changed, try again");
        }
        first
    };
    check_new_password(&password).map_err(anyhow::Error::msg)?;
    Ok(password)
}
