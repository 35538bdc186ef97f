//! Ballots of a campaign per hour of arrival, for the live dashboard: one grouped read
//! that also tells, by its sum, whether new ballots came in since the last look.

use serde::Serialize;

use super::{Backend, Store, StoreError};

/// Stored ballots that arrived within one UTC hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HourCount {
    /// The hour's start, `2026-11-23T09:00:00Z`.
    pub hour: String,
    pub ballots: u64,
}

/// `received_at` is RFC 3339 in UTC (`2026-11-23T09:12:34.567Z`): its first 13
/// characters are the hour, on both backends.
const SQL: &str = "SELECT substr(received_at, 1, 13) AS hour, COUNT(*) FROM ballots \
     WHERE form_id = $1 AND form_version = $2 GROUP BY hour ORDER BY hour";

impl Store {
    /// The campaign's stored ballots per hour of arrival, oldest hour first.
    pub async fn arrivals_per_hour(
        &self,
        form_id: &str,
        form_version: &str,
    ) -> Result<Vec<HourCount>, StoreError> {
        let hour = |h: String, n: i64| HourCount {
            hour: format!("{h}:00:00Z"),
            ballots: n.max(0) as u64,
        };
        match &*self.backend {
            Backend::Sqlite(s) => {
                let (id, version) = (form_id.to_string(), form_version.to_string());
                s.read(move |conn| {
                    let mut stmt = conn.prepare_cached(&SQL.replace('$', "?"))?;
                    let rows =
                        stmt.query_map([&id, &version], |r| Ok(hour(r.get(0)?, r.get(1)?)))?;
                    rows.collect()
                })
                .await
            }
            Backend::Postgres(s) => {
                let client = s.client().await?;
                let rows = client
                    .query(SQL, &[&form_id, &form_version])
                    .await
                    .map_err(|e| s.error(e))?;
                Ok(rows.iter().map(|r| hour(r.get(0), r.get(1))).collect())
            }
        }
    }
}
