//! Which two accounts a store belongs to (issue #11.3): a store's id maps only make sense in the
//! Deskie account its cases were created in, and its tickets only for the Desk360 account they
//! were read from. The first run (a dry run too) records both; every later writing command
//! compares them before it writes anything and refuses another account with one line saying
//! which side differs and what to do.
//!
//! - Deskie: the account is the host of `[target] base_url` (`acme.deskie.io`; with the port
//!   when it is not the default, which is what tells two local sandboxes apart). Deskie's pages
//!   give no "who am I" call for the account; the host *is* the account (`https://<account>.deskie.io`).
//! - Desk360: every account shares `api.desk360.com`, so the base URL alone proves nothing; the
//!   account is what `GET /v1/me` answers for the token (vendor page 004, "Get Current Agent").
//!   A token of another agent of the same account answers another agent: that is still the same
//!   account when the recorded agent is one of this account's agents (`GET /v1/agents`, one more
//!   request, only in that case) and everything `/v1/me` says beyond the agent's own fields
//!   (`id`, `name`, `email`, `avatar`) is unchanged.
//!
//! The check is split in two so nothing is recorded before the credentials are proven: the
//! comparison first ([`TargetPlan::check`], no network), then [`TargetPlan::apply`] after the
//! clients answered.

use desk360::Desk360Client;
use serde_json::Value;
use store::{AccountIdentity, Side, Store};
use url::Url;

use crate::config::Settings;
use crate::error::{EngineError, Result};

/// A URL as recorded: scheme, lowercase host, non-default port, path without a trailing slash;
/// never credentials, query or fragment.
pub(crate) fn normalized_url(url: &Url) -> String {
    let path = url.path().trim_end_matches('/');
    format!("{}://{}{}", url.scheme(), host_port(url), path)
}

/// `host` or `host:port` (the port only when it is not the scheme's default).
fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

/// The Deskie account the configuration points at.
pub(crate) fn deskie_identity(settings: &Settings) -> AccountIdentity {
    AccountIdentity {
        side: Side::Deskie,
        base_url: normalized_url(&settings.target.base_url),
        account: host_port(&settings.target.base_url),
    }
}

/// What to do with the target side once the clients have answered.
#[derive(Debug)]
pub(crate) enum TargetPlan {
    /// The recorded target is the configured one: nothing to do.
    Same,
    /// Nothing recorded yet (the store's first run): record it.
    Record(AccountIdentity),
    /// `--retarget` to another account: forget the previous target's maps and record this one.
    Retarget {
        /// The previous account, for the log.
        from: String,
        /// The new one.
        to: AccountIdentity,
    },
}

impl TargetPlan {
    /// Compares the configured Deskie account with the store's, without any request. Another
    /// account is refused (`EngineError::WrongAccount`) unless `retarget` asks to move the store.
    pub(crate) async fn check(store: &Store, settings: &Settings, retarget: bool) -> Result<Self> {
        let current = deskie_identity(settings);
        let Some(recorded) = store.account(Side::Deskie).await? else {
            return Ok(TargetPlan::Record(current));
        };
        if recorded.account == current.account {
            if retarget {
                tracing::warn!(
                    target_account = %current.account,
                    "--retarget ignored: the store already belongs to this Deskie account"
                );
            }
            return Ok(TargetPlan::Same);
        }
        if retarget {
            return Ok(TargetPlan::Retarget {
                from: recorded.account,
                to: current,
            });
        }
        Err(EngineError::WrongAccount(format!(
            "the Deskie target differs: this store's cases are in the Deskie account {old}, but \
             [target] base_url points at {new}; to migrate into {new} from scratch set [store] \
             path to a new file, or run `deskie-import run --retarget` to forget the cases made \
             in {old} and migrate everything again into {new}",
            old = recorded.account,
            new = current.account,
        )))
    }

    /// Records the decision (after the credentials were accepted).
    pub(crate) async fn apply(self, store: &Store) -> Result<()> {
        match self {
            TargetPlan::Same => {}
            TargetPlan::Record(identity) => store.record_account(&identity).await?,
            TargetPlan::Retarget { from, to } => {
                let summary = store.retarget(&to).await?;
                tracing::warn!(
                    from = %from,
                    to = %to.account,
                    cases_forgotten = summary.cases_forgotten,
                    tickets = summary.tickets_requeued,
                    "re-targeted: every ticket is migrated again into the new Deskie account"
                );
            }
        }
        Ok(())
    }
}

/// The agent's own fields in `/v1/me`: they change with the token, not with the account.
const AGENT_FIELDS: [&str; 4] = ["id", "name", "email", "avatar"];

/// Compares the configured Desk360 account with the store's; returns the identity to record
/// when none is recorded yet. Without a client (`retry-failed`, which reads nothing from
/// Desk360) only the base URL is compared and nothing is recorded.
pub(crate) async fn check_source(
    store: &Store,
    settings: &Settings,
    client: Option<&Desk360Client>,
) -> Result<Option<AccountIdentity>> {
    let base_url = normalized_url(&settings.source.base_url);
    let recorded = store.account(Side::Desk360).await?;
    if let Some(r) = &recorded
        && r.base_url != base_url
    {
        return Err(source_differs(r, &base_url, None));
    }
    let Some(client) = client else {
        return Ok(None);
    };
    let me = client.me().await?;
    let me_json = serde_json::to_value(&me)
        .map_err(|e| EngineError::Internal(format!("cannot encode /v1/me: {e}")))?;
    let current = AccountIdentity {
        side: Side::Desk360,
        base_url,
        account: me_json.to_string(),
    };
    let Some(recorded) = recorded else {
        return Ok(Some(current));
    };
    if recorded.account == current.account {
        return Ok(None);
    }
    let old: Value = serde_json::from_str(&recorded.account).unwrap_or(Value::Null);
    let recorded_id = old.get("id").and_then(Value::as_i64);
    if account_part(&old) == account_part(&me_json)
        && let Some(id) = recorded_id
    {
        // Another agent's token (or the same agent, renamed): the same account if the agent the
        // store was created with is one of this account's agents.
        let agents = client.agents().await?;
        if agents.iter().any(|a| a.id == id) {
            tracing::info!(
                recorded_agent = id,
                current_agent = me.id,
                "another agent's Desk360 token for the same account"
            );
            return Ok(None);
        }
    }
    Err(source_differs(&recorded, &current.base_url, Some(&me_json)))
}

/// `/v1/me` without the agent's own fields: what describes the account, if anything.
fn account_part(me: &Value) -> Value {
    match me {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| !AGENT_FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// "agent 11 <john@mail.com>" from a `/v1/me` answer.
fn describe(me: &Value) -> String {
    let id = me.get("id").map(Value::to_string).unwrap_or_default();
    let mut text = format!("agent {id}");
    if let Some(email) = me.get("email").and_then(Value::as_str) {
        text.push_str(&format!(" <{email}>"));
    }
    for (k, v) in account_part(me).as_object().into_iter().flatten() {
        let v = v
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string());
        text.push_str(&format!(", {k} {v}"));
    }
    text
}

fn source_differs(recorded: &AccountIdentity, base_url: &str, me: Option<&Value>) -> EngineError {
    let old: Value = serde_json::from_str(&recorded.account).unwrap_or(Value::Null);
    let now = match me {
        Some(me) => format!("{base_url} ({})", describe(me)),
        None => base_url.to_owned(),
    };
    EngineError::WrongAccount(format!(
        "the Desk360 source differs: this store holds the tickets of the Desk360 account at {} \
         ({}), but [source] points at {now}; a store belongs to one source account: for another \
         account set [store] path to a new file (or point [source] back at the original one)",
        recorded.base_url,
        describe(&old),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls_are_recorded_without_secrets_or_noise() {
        let u = Url::parse("https://user:pw@ACME.deskie.io:443/api/?x=1#f").unwrap();
        assert_eq!(normalized_url(&u), "https://acme.deskie.io/api");
        assert_eq!(host_port(&u), "acme.deskie.io");
        let u = Url::parse("http://127.0.0.1:4321/").unwrap();
        assert_eq!(host_port(&u), "127.0.0.1:4321");
    }

    #[test]
    fn the_account_part_ignores_the_agent() {
        let a: Value = serde_json::json!({"id": 1, "name": "A", "email": "a@x", "company": "acme"});
        let b: Value = serde_json::json!({"id": 2, "name": "B", "email": "b@x", "company": "acme"});
        let c: Value =
            serde_json::json!({"id": 1, "name": "A", "email": "a@x", "company": "other"});
        assert_eq!(account_part(&a), account_part(&b));
        assert_ne!(account_part(&a), account_part(&c));
        assert_eq!(describe(&c), "agent 1 <a@x>, company other");
    }
}
