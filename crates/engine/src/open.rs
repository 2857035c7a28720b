//! Opening a migration: the [`Engine`] handle over one store, its limiters (sharing one
//! cancellation, so no request leaves after Ctrl-C), progress counters and settings. The
//! commands (`run`, `status`, `report`, `verify`, `preflight`, `rollback`) are `impl Engine`
//! blocks in their own modules.

use std::sync::Arc;

use store::{Store, StoreLock};
use throttle::{Limiter, LimiterConfig, LimiterStats, RetryPolicy};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::ctx::{Ctx, StatMarks};
use crate::error::Result;
use crate::progress::Progress;

/// An opened migration: store, limiters, progress counters and the cancellation token.
pub struct Engine {
    pub(crate) ctx: Arc<Ctx>,
    /// The store's write lock, when opened with [`Engine::open_writer`] (held until dropped).
    pub(crate) writer: Option<StoreLock>,
}

impl Engine {
    /// Opens (creating if needed) the store named in the settings, for reading: `status`,
    /// `report`, `verify`. No network, no lock; [`Engine::run`] still takes the write lock for
    /// its own duration.
    pub async fn open(settings: Settings) -> Result<Engine> {
        Self::open_with(settings, None).await
    }

    /// Takes the store's write lock (failing at once with `StoreError::Locked` when another
    /// process writes it), then opens it: what every writing command does first, so the lock
    /// covers the command's whole life, schema migrations included.
    pub async fn open_writer(settings: Settings) -> Result<Engine> {
        let lock = StoreLock::acquire(&settings.store_path)?;
        Self::open_with(settings, Some(lock)).await
    }

    async fn open_with(settings: Settings, writer: Option<StoreLock>) -> Result<Engine> {
        let store = Store::open(&settings.store_path).await?;
        let retry = RetryPolicy {
            max_transient_retries: settings.run.max_retries,
            ..RetryPolicy::default()
        };
        // Every wait of both limiters ends at Ctrl-C: after it, no request is sent.
        let cancel = CancellationToken::new();
        let desk360_limiter = Limiter::with_cancel(
            LimiterConfig {
                name: "desk360",
                limit: settings.source.rpm,
                window: settings.source.window,
                ..LimiterConfig::default()
            },
            cancel.clone(),
        );
        let deskie_limiter = Limiter::with_cancel(
            LimiterConfig {
                name: "deskie",
                limit: settings.target.rpm,
                window: settings.target.window,
                ceiling: settings.target.rpm_ceiling,
                ..LimiterConfig::default()
            },
            cancel.clone(),
        );
        Ok(Engine {
            ctx: Arc::new(Ctx {
                settings,
                store,
                progress: Arc::new(Progress::default()),
                cancel,
                load_cancel: CancellationToken::new(),
                desk360_limiter,
                deskie_limiter,
                extracted: Notify::new(),
                extraction_over: watch::channel(false).0,
                retry,
                files: std::sync::OnceLock::new(),
                selected_only: std::sync::atomic::AtomicBool::new(false),
                run_intents_after: std::sync::atomic::AtomicI64::new(i64::MAX),
                earlier_writes: std::sync::Mutex::new(None),
                stat_marks: std::sync::Mutex::new(StatMarks::default()),
            }),
            writer,
        })
    }

    /// Live counters, for progress display.
    pub fn progress(&self) -> Arc<Progress> {
        self.ctx.progress.clone()
    }

    /// Cancel this to stop the run cleanly.
    pub fn cancel_token(&self) -> CancellationToken {
        self.ctx.cancel.clone()
    }

    /// Desk360 and Deskie limiter counters now.
    pub fn limiter_stats(&self) -> (LimiterStats, LimiterStats) {
        (
            self.ctx.desk360_limiter.stats(),
            self.ctx.deskie_limiter.stats(),
        )
    }

    /// The shared limiters (Desk360, Deskie), for commands that send their own requests.
    pub(crate) fn limiters(&self) -> (Limiter, Limiter) {
        (
            self.ctx.desk360_limiter.clone(),
            self.ctx.deskie_limiter.clone(),
        )
    }

    /// The settings this engine was opened with.
    pub fn settings(&self) -> &Settings {
        &self.ctx.settings
    }

    /// The store (for reports and status).
    pub fn store(&self) -> &Store {
        &self.ctx.store
    }
}
