//! Signing in: the throttle first, then the password check (argon2 in a blocking thread,
//! at most a few at once so a flood of attempts cannot take all memory and cores), then
//! a new session. Every failure is logged and audited with the name tried; an unknown
//! name and a wrong password get the same answer after the same work.

use std::net::IpAddr;
use std::time::Duration;

use analysis::error::cut;
use tokio::sync::Semaphore;

use super::throttle::Throttle;
use super::{new_token, token_hash, verify_password, Role, SESSION_HOURS};
use crate::store::{Store, StoreError};

/// Password checks running at once; more wait their turn.
const HASHING_AT_ONCE: usize = 2;

/// The sign-in state of one server: failures so far and the permits to hash.
#[derive(Debug)]
pub struct SignIns {
    throttle: Throttle,
    hashing: Semaphore,
}

impl Default for SignIns {
    fn default() -> SignIns {
        SignIns {
            throttle: Throttle::new(),
            hashing: Semaphore::new(HASHING_AT_ONCE),
        }
    }
}

/// A new session: the token goes in the cookie, the rest in the answer.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub name: String,
    pub role: Role,
}

/// Why a sign-in did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("wrong name or password")]
    Wrong,
    #[error("too many failed sign-ins for this name or from this address; try again in {} s", .0.as_secs())]
    Throttled(Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl SignIns {
    /// Checks `name` and `password` from `address`; on success records a session of
    /// [`SESSION_HOURS`] and audits `sign_in`, on failure audits `sign_in_failed`.
    pub async fn sign_in(
        &self,
        store: &Store,
        name: &str,
        password: &str,
        address: IpAddr,
    ) -> Result<Session, SignInError> {
        let shown = cut(name);
        if let Err(wait) = self.throttle.check(name, address) {
            tracing::warn!(name = %shown, %address, "sign-in refused: throttled for {} s", wait.as_secs());
            // Rounded up, so a client that waits exactly this long is let through.
            return Err(SignInError::Throttled(Duration::from_secs(
                wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            )));
        }
        let stored = store.credentials(name).await?;
        let matches = {
            let _permit = self
                .hashing
                .acquire()
                .await
                .map_err(|e| SignInError::Internal(e.to_string()))?;
            let password = password.to_string();
            let hash = stored.as_ref().map(|(_, hash)| hash.clone());
            tokio::task::spawn_blocking(move || verify_password(&password, hash.as_deref()))
                .await
                .map_err(|e| SignInError::Internal(format!("the password check failed: {e}")))?
        };
        let address_text = address.to_string();
        let role = match (matches, stored) {
            (true, Some((role, _))) => {
                Role::parse(&role).map_err(|e| SignInError::Internal(format!("{shown}: {e}")))?
            }
            _ => {
                let delay = self.throttle.failed(name, address);
                tracing::warn!(name = %shown, %address, "sign-in failed: wrong name or password");
                store
                    .audit(
                        &shown,
                        &address_text,
                        "sign_in_failed",
                        "wrong name or password",
                    )
                    .await?;
                tokio::time::sleep(delay).await;
                return Err(SignInError::Wrong);
            }
        };
        self.throttle.succeeded(name);
        let token = new_token();
        let expires = analysis::time::format_rfc3339(now_millis() + SESSION_HOURS * 3_600_000);
        store
            .add_session(&token_hash(&token), name, &expires, &address_text)
            .await?;
        store
            .audit(name, &address_text, "sign_in", &format!("as {role}"))
            .await?;
        tracing::info!(name, %address, "signed in as {role}");
        Ok(Session {
            token,
            name: name.to_string(),
            role,
        })
    }
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
