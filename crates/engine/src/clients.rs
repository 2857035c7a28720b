//! Building the two API clients (and the file clients of upload mode) from the settings, shared
//! by the run, preflight, verify and rollback so each builds them the same way.

use std::time::Duration;

use throttle::{Limiter, LimiterConfig, RetryPolicy};

use crate::config::{Settings, SourceAuth};
use crate::ctx::Ctx;
use crate::error::Result;

/// Builds the Deskie client from the settings.
pub(crate) fn build_deskie(
    settings: &Settings,
    limiter: Limiter,
    retry: RetryPolicy,
) -> Result<deskie::DeskieClient> {
    let t = &settings.target;
    let mut config =
        deskie::DeskieConfig::new(t.base_url.clone(), t.staff_email.clone(), t.api_key.clone());
    config.timeout = t.timeout;
    config.retry = retry;
    Ok(deskie::DeskieClient::new(config, limiter)?)
}

/// The clients of `[attachments] mode = "upload"` around a Desk360 client. Downloads from
/// storage hosts other than the Desk360 API have their own budget (`[attachments] storage_rpm`,
/// not charged to the Desk360 limit, see `desk360::files`); a CDN takes far more than the
/// default, the bound only keeps a run polite.
pub(crate) fn file_clients(ctx: &Ctx, desk360: desk360::Desk360Client) -> crate::ctx::FileClients {
    let storage = Limiter::with_cancel(
        LimiterConfig {
            name: "storage",
            limit: ctx.settings.attachments.storage_rpm,
            window: Duration::from_secs(60),
            ..LimiterConfig::default()
        },
        ctx.cancel.clone(),
    );
    crate::ctx::FileClients { desk360, storage }
}

/// Builds (and, for email + password, logs in) the Desk360 client.
pub(crate) async fn build_desk360(
    settings: &Settings,
    limiter: Limiter,
    retry: RetryPolicy,
) -> Result<desk360::Desk360Client> {
    let s = &settings.source;
    let auth = match &s.auth {
        SourceAuth::Token(t) => desk360::Auth::Token(t.clone()),
        SourceAuth::Login { email, password } => desk360::Auth::Login {
            email: email.clone(),
            password: password.clone(),
        },
    };
    let mut config = desk360::Desk360Config::new(s.base_url.clone(), auth);
    config.timeout = s.timeout;
    config.retry = retry;
    Ok(desk360::Desk360Client::connect(config, limiter).await?)
}
