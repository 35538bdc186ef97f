//! The live dashboard's numbers, and scoring a collection database the way `pingyi score`
//! does: [`DatabaseSource`] hands the stored ballots to the same aggregation and
//! [`score_database`] is the one function both the command line and the console's
//! dashboard call, so their numbers are equal.
//!
//! The console polls the dashboard every few seconds; a computation reads every ballot
//! of the campaign, so [`Dashboard`] keeps the last result per campaign and rules and
//! computes again only when the count of stored ballots or the head counts changed. Computing runs on a
//! blocking thread, never on the async runtime.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr, UdpSocket};

use analysis::aggregate::Aggregate;
use analysis::files::{aggregate_inputs, BallotSource, Input, Options};
use analysis::rules::{HeadCounts, Resolved, Rules};
use analysis::score::Report;
use analysis::{Ballot, Form, InputError};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::config::{DashboardSettings, RulesFile};
use crate::store::arrivals::HourCount;
use crate::store::{Database, ReadError, Reader};

/// The ballots of a collection database, read one row at a time (and counted, for the
/// summary `pingyi score` prints).
pub struct DatabaseSource {
    name: String,
    reader: RefCell<Reader>,
    /// Ballots handed over by the last read.
    read: Cell<u64>,
}

impl DatabaseSource {
    /// Opens an existing database; a missing one is an error, never created.
    pub fn open(db: &Database) -> Result<DatabaseSource, String> {
        let reader = Reader::open(db).map_err(|e| e.to_string())?;
        Ok(DatabaseSource {
            name: reader.name().to_string(),
            reader: RefCell::new(reader),
            read: Cell::new(0),
        })
    }

    /// The database's name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The campaign's head counts per group: codes issued and used, attendance.
    pub fn head_counts(&self, form: &Form) -> Result<BTreeMap<String, HeadCounts>, String> {
        self.reader
            .borrow_mut()
            .head_counts(&form.id, &form.version)
            .map_err(|e| format!("{}: {e}", self.name))
    }

    /// Ballots handed over by the last read.
    pub fn read(&self) -> u64 {
        self.read.get()
    }

    /// One line saying what was read, and what the database holds that was not (ballots
    /// of other forms or versions, which need their own `--form`).
    pub fn summary(&self, form: &Form) -> Result<String, String> {
        let others: Vec<String> = self
            .reader
            .borrow_mut()
            .forms()
            .map_err(|e| e.to_string())?
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

/// Aggregates the inputs (files and databases) as `pingyi score` and `pingyi aggregate`
/// do; `progress` is called with the bytes of files read.
pub fn aggregate(
    form: &Form,
    rules: &Resolved,
    inputs: &[Input<'_>],
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Aggregate, InputError> {
    let opts = Options {
        threads: threads.max(1),
        progress,
    };
    aggregate_inputs(form, rules, inputs, &opts)
}

/// The score report of a database's ballots of `form` under `rules`: exactly what
/// `pingyi score DATABASE --format json` prints. `notes` (where the head counts came
/// from, [`database_rules`]) go first among the report's notes.
pub fn score_database(
    source: &DatabaseSource,
    form: &Form,
    rules: &Resolved,
    notes: &[String],
) -> Result<Report, String> {
    let agg =
        aggregate(form, rules, &[Input::Ballots(source)], 1, &|_| {}).map_err(|e| e.to_string())?;
    Ok(with_notes(analysis::score::score(form, rules, &agg), notes))
}

/// The report with `notes` put first among its notes.
pub fn with_notes(mut report: Report, notes: &[String]) -> Report {
    report.notes.splice(0..0, notes.iter().cloned());
    report
}

/// The rules for scoring a database's campaign: the file's (or the defaults), with the
/// head counts they leave out taken from the database (`heads`, named `from`: codes
/// issued and used, attendance), checked against `form` with score's messages. Also
/// the notes saying where each head count came from.
pub fn database_rules(
    file: Option<&RulesFile>,
    form: &Form,
    heads: &BTreeMap<String, HeadCounts>,
    from: &str,
) -> Result<(Resolved, Vec<String>), String> {
    let (source, mut rules) = match file {
        None => ("default rules".to_string(), Rules::default()),
        Some(f) => (
            f.source.clone(),
            Rules::parse_toml(&f.source, &f.text).map_err(|e| e.to_string())?,
        ),
    };
    let groups: Vec<String> = form.groups.iter().map(|g| g.id.clone()).collect();
    let notes = rules
        .with_head_counts(&source, &groups, heads, from)
        .map_err(|e| e.to_string())?;
    let resolved = rules.resolve(&source, form).map_err(|e| e.to_string())?;
    Ok((resolved, notes))
}

/// The rules a dashboard asks for by name, or the defaults (`pingyi score` without
/// `--rules`), checked against `form` with score's messages.
pub fn resolve_rules(file: Option<&RulesFile>, form: &Form) -> Result<Resolved, String> {
    match file {
        None => Rules::default()
            .resolve("default rules", form)
            .map_err(|e| e.to_string()),
        Some(f) => Rules::from_toml(&f.source, &f.text, form).map_err(|e| e.to_string()),
    }
}

/// The address respondents open: `--public-url` as given, else the listen address, with
/// the first LAN address in place of an unspecified one (0.0.0.0 / ::).
pub fn public_url(asked: Option<&str>, bound: SocketAddr, scheme: &str) -> String {
    if let Some(url) = asked {
        return url.to_string();
    }
    let ip = if bound.ip().is_unspecified() {
        lan_address(bound.ip()).unwrap_or(if bound.is_ipv4() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1])
        })
    } else {
        bound.ip()
    };
    format!("{scheme}://{}/", SocketAddr::new(ip, bound.port()))
}

/// The address the OS would send from to reach another network: connecting a UDP
/// socket picks the route without sending a packet. None without a network.
fn lan_address(like: IpAddr) -> Option<IpAddr> {
    let (local, remote): (SocketAddr, SocketAddr) = if like.is_ipv4() {
        (([0, 0, 0, 0], 0).into(), ([192, 0, 2, 1], 9).into())
    } else {
        (
            ([0u16; 8], 0).into(),
            ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 9).into(),
        )
    };
    let socket = UdpSocket::bind(local).ok()?;
    socket.connect(remote).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}

/// Why a dashboard could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The rules name is not one `serve` was given.
    #[error("{0}")]
    UnknownRules(String),
    /// The rules do not fit the campaign's form, or the ballots could not be read.
    #[error("{0}")]
    Failed(String),
}

/// A campaign (form id, version) and the rules' name.
type CacheKey = (String, String, Option<String>);

/// One computed dashboard, with the count of stored ballots and the head counts it was
/// computed for.
struct Computed {
    ballots: u64,
    heads: BTreeMap<String, HeadCounts>,
    body: Value,
}

/// The dashboard's settings and its cache of computed results.
pub struct Dashboard {
    settings: DashboardSettings,
    public_url: String,
    database: Database,
    /// Per (form id, version, rules name): held while computing, so that pollers of one
    /// dashboard wait for one computation instead of each starting their own.
    cache: Mutex<HashMap<CacheKey, Computed>>,
}

/// A rules file as the console lists it.
#[derive(Debug, Serialize)]
pub struct RulesEntry {
    pub name: String,
    pub title: String,
}

impl Dashboard {
    pub fn new(settings: DashboardSettings, public_url: String, database: Database) -> Dashboard {
        Dashboard {
            settings,
            public_url,
            database,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The rules files by name, with the name the file gives itself as title.
    pub fn rules(&self) -> Vec<RulesEntry> {
        self.settings
            .rules
            .iter()
            .map(|f| {
                let title = toml::from_str::<Rules>(&f.text)
                    .ok()
                    .and_then(|r| r.name)
                    .unwrap_or_else(|| f.name.clone());
                RulesEntry {
                    name: f.name.clone(),
                    title,
                }
            })
            .collect()
    }

    /// The dashboard of `form` under the rules named `rules` (the defaults if None), from
    /// the cache when no ballot arrived since it was computed.
    pub async fn compute(
        &self,
        form: &Form,
        rules: Option<&str>,
        per_hour: Vec<HourCount>,
        heads: BTreeMap<String, HeadCounts>,
    ) -> Result<Value, DashboardError> {
        let file = match rules {
            None => None,
            Some(name) => Some(
                self.settings
                    .rules
                    .iter()
                    .find(|f| f.name == name)
                    .ok_or_else(|| {
                        let known: Vec<&str> = self
                            .settings
                            .rules
                            .iter()
                            .map(|f| f.name.as_str())
                            .collect();
                        DashboardError::UnknownRules(format!(
                    "rules={} is not a rules file this server was started with, expected {}",
                    analysis::error::quoted(name),
                    if known.is_empty() {
                        "none (start pingyi serve with --rules FILE)".to_string()
                    } else {
                        format!("one of: {}", known.join(", "))
                    }
                ))
                    })?,
            ),
        };
        let ballots: u64 = per_hour.iter().map(|h| h.ballots).sum();
        let key = (
            form.id.clone(),
            form.version.clone(),
            rules.map(str::to_string),
        );
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache
            .get(&key)
            .filter(|c| c.ballots == ballots && c.heads == heads)
        {
            let mut body = c.body.clone();
            body["per_hour"] = json!(per_hour);
            return Ok(body);
        }
        let (form2, file2, db) = (form.clone(), file.cloned(), self.database.clone());
        let heads2 = heads.clone();
        let report = tokio::task::spawn_blocking(move || {
            let source = DatabaseSource::open(&db)?;
            let (resolved, notes) =
                database_rules(file2.as_ref(), &form2, &heads2, "the database")?;
            score_database(&source, &form2, &resolved, &notes)
        })
        .await
        .map_err(|e| DashboardError::Failed(format!("the computation stopped: {e}")))?
        .map_err(DashboardError::Failed)?;
        let body = body_of(&report, rules, ballots, &per_hour, &heads);
        cache.insert(
            key,
            Computed {
                ballots,
                heads,
                body: body.clone(),
            },
        );
        Ok(body)
    }
}

/// The dashboard's JSON: the ballots per unit × group as scoring counted them (groups of
/// the vote that rated the unit; void groups are left out, as scoring leaves them), per hour
/// of arrival, and the score report itself.
fn body_of(
    report: &Report,
    rules: Option<&str>,
    ballots: u64,
    per_hour: &[HourCount],
    heads: &BTreeMap<String, HeadCounts>,
) -> Value {
    let by_unit_group: Vec<Value> = report
        .units
        .iter()
        .flat_map(|u| {
            u.groups
                .iter()
                .filter(|(_, r)| r.n > 0)
                .map(|(g, r)| json!({ "unit": u.unit, "group": g, "n": r.n }))
        })
        .collect();
    json!({
        "ballots": ballots,
        "by_unit_group": by_unit_group,
        "per_hour": per_hour,
        "head_counts": heads,
        "rules": rules,
        "scores": report,
        "computed_at": analysis::time::format_rfc3339(now_millis()),
    })
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::public_url;

    #[test]
    fn the_public_address_is_the_one_asked_for_else_the_listen_one_never_unspecified() {
        let at = |s: &str| s.parse().unwrap();
        assert_eq!(
            public_url(Some("https://pingyi.example/"), at("0.0.0.0:8443"), "https"),
            "https://pingyi.example/"
        );
        assert_eq!(
            public_url(None, at("127.0.0.1:8080"), "http"),
            "http://127.0.0.1:8080/"
        );
        for bound in ["0.0.0.0:8080", "[::]:8080"] {
            let url = public_url(None, at(bound), "http");
            assert!(
                url.starts_with("http://") && url.ends_with(":8080/"),
                "{url}"
            );
            assert!(!url.contains("0.0.0.0") && !url.contains("[::]"), "{url}");
        }
    }
}
