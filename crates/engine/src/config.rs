//! Configuration: the TOML contract of DESIGN.md parsed strictly, then validated into
//! [`Settings`] before any request is sent.
//!
//! Raw types mirror the file (unknown keys are an error naming the key, thanks to
//! `deny_unknown_fields`); [`Settings`] is what the rest of the engine uses, with every default
//! applied, secrets wrapped in [`SecretString`], URLs parsed and the Deskie rate limit derived
//! from plan and agents. Every validation error is one line that says what to fix.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use deskie::{CasePriority, CaseStatus};
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

/// A configuration problem, found before any request is sent. The message names the key and the
/// fix; the binary exits with code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error(
        "cannot read config file {path}: {source} (create one from config/deskie-import.example.toml)"
    )]
    Read {
        /// The path given.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed or has an unknown key / wrong type.
    #[error("config file {path}: {message}")]
    Parse {
        /// The path given.
        path: PathBuf,
        /// toml's description, with the key and line.
        message: String,
    },
    /// A value is present but not acceptable.
    #[error("config key `{key}`: {message}")]
    Invalid {
        /// Dotted key, e.g. `target.plan`.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// The file as written. Field docs live in `config/deskie-import.example.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[source]`
    #[serde(default)]
    pub source: RawSource,
    /// `[target]`
    #[serde(default)]
    pub target: RawTarget,
    /// `[mapping]`
    #[serde(default)]
    pub mapping: RawMapping,
    /// `[store]`
    #[serde(default)]
    pub store: RawStore,
    /// `[run]`
    #[serde(default)]
    pub run: RawRun,
    /// `[attachments]`
    #[serde(default)]
    pub attachments: RawAttachments,
}

/// `[attachments]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAttachments {
    /// `upload` | `urls`.
    pub mode: Option<String>,
    /// `rehost` | `keep`.
    pub inline: Option<String>,
    /// Downloads a minute from storage hosts other than the Desk360 API.
    pub storage_rpm: Option<u32>,
}

/// `[source]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// Desk360 API base URL.
    pub base_url: Option<String>,
    /// API token (or `DESK360_TOKEN`).
    pub token: Option<String>,
    /// Login email (or `DESK360_EMAIL`).
    pub email: Option<String>,
    /// Login password (or `DESK360_PASSWORD`).
    pub password: Option<String>,
    /// Requests per minute of the plan.
    pub rpm: Option<u32>,
    /// Products to migrate; empty = all.
    pub products: Option<Vec<i64>>,
    /// Zone of Desk360's naive timestamps.
    pub timezone: Option<String>,
    /// Length of the rate-limit window in seconds (60 for the real service).
    pub window_secs: Option<f64>,
    /// Per-request timeout in seconds.
    pub timeout_secs: Option<f64>,
}

/// `[target]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// Deskie account URL; requests go to `{base_url}/api/…`.
    pub base_url: Option<String>,
    /// Email of the agent whose API key is used.
    pub staff_email: Option<String>,
    /// API key (or `DESKIE_API_KEY`).
    pub api_key: Option<String>,
    /// basic | standard | pro.
    pub plan: Option<String>,
    /// Enabled agents in the Deskie account.
    pub agents: Option<u32>,
    /// Explicit requests-per-minute override.
    pub rpm: Option<u32>,
    /// Text custom field receiving `desk360:<product>:<ticket>`.
    pub source_id_field: Option<String>,
    /// Length of the rate-limit window in seconds (60 for the real service).
    pub window_secs: Option<f64>,
    /// Per-request timeout in seconds.
    pub timeout_secs: Option<f64>,
}

/// `[mapping]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMapping {
    /// Staff id for Desk360 agents with no mapping.
    pub default_staff_id: Option<i64>,
    /// Desk360 agent id → Deskie staff id.
    #[serde(default)]
    pub agents: BTreeMap<String, i64>,
    /// Desk360 status code → Deskie status.
    #[serde(default)]
    pub status: BTreeMap<String, String>,
    /// Desk360 priority code → Deskie priority.
    #[serde(default)]
    pub priority: BTreeMap<String, String>,
    /// Desk360 channel name → email | calls | custom:<id> | skip.
    #[serde(default)]
    pub channels: BTreeMap<String, String>,
    /// Desk360 type id → Deskie label id.
    #[serde(default)]
    pub types: BTreeMap<String, i64>,
    /// Desk360 reason id → Deskie label id.
    #[serde(default)]
    pub reasons: BTreeMap<String, i64>,
    /// Custom field receiving the Desk360 type title.
    pub type_field: Option<String>,
    /// Custom field receiving the Desk360 reason title.
    pub reason_field: Option<String>,
    /// Deskie group for every migrated case.
    pub group_id: Option<i64>,
}

/// `[store]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// SQLite file path.
    pub path: Option<PathBuf>,
}

/// `[run]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRun {
    /// Cases in flight.
    pub concurrency: Option<usize>,
    /// Ticket details fetched concurrently.
    pub extract_concurrency: Option<usize>,
    /// Retries of a transient failure before the ticket is marked failed-transient.
    pub max_retries: Option<usize>,
    /// Seconds a write whose answer was lost is left to land before it is looked for.
    pub reconcile_settle_secs: Option<f64>,
}

/// Secrets given on the command line or in the environment; they win over the file.
#[derive(Default)]
pub struct SecretOverrides {
    /// `DESK360_TOKEN`
    pub desk360_token: Option<SecretString>,
    /// `DESK360_EMAIL`
    pub desk360_email: Option<String>,
    /// `DESK360_PASSWORD`
    pub desk360_password: Option<SecretString>,
    /// `DESKIE_API_KEY`
    pub deskie_api_key: Option<SecretString>,
}

/// How to authenticate against Desk360.
#[derive(Clone)]
pub enum SourceAuth {
    /// A token from the Desk360 panel.
    Token(SecretString),
    /// Email + password exchanged for a token at `/v1/login`.
    Login {
        /// Login email.
        email: String,
        /// Password.
        password: SecretString,
    },
}

impl std::fmt::Debug for SourceAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceAuth::Token(_) => f.write_str("Token([redacted])"),
            SourceAuth::Login { email, .. } => {
                write!(f, "Login {{ email: {email:?}, password: [redacted] }}")
            }
        }
    }
}

/// Validated `[source]`.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    /// Desk360 base URL.
    pub base_url: Url,
    /// Credentials.
    pub auth: SourceAuth,
    /// Requests per window.
    pub rpm: u32,
    /// Products to migrate; empty = all.
    pub products: Vec<i64>,
    /// Zone of naive timestamps.
    pub timezone: jiff::tz::TimeZone,
    /// Its name as configured, for reports.
    pub timezone_name: String,
    /// Rate-limit window.
    pub window: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// Deskie's plan, which sets the rate limit per enabled agent: vendor knowledge kept in the
/// `deskie` crate, re-exported here because [`TargetSettings`] holds it.
pub use deskie::Plan;

/// Validated `[target]`.
#[derive(Clone)]
pub struct TargetSettings {
    /// Deskie account URL.
    pub base_url: Url,
    /// Agent email for basic auth.
    pub staff_email: String,
    /// API key.
    pub api_key: SecretString,
    /// Plan.
    pub plan: Plan,
    /// Enabled agents.
    pub agents: u32,
    /// Units per window (plan rule, or the explicit override).
    pub rpm: u32,
    /// The explicit `rpm`, when one was configured: a ceiling the response headers may lower the
    /// limit below but never raise it above (room left for the account's other integrations).
    pub rpm_ceiling: Option<u32>,
    /// Custom field for the source key, if configured.
    pub source_id_field: Option<String>,
    /// Rate-limit window.
    pub window: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for TargetSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetSettings")
            .field("base_url", &self.base_url.as_str())
            .field("staff_email", &self.staff_email)
            .field("api_key", &"[redacted]")
            .field("plan", &self.plan)
            .field("agents", &self.agents)
            .field("rpm", &self.rpm)
            .field("source_id_field", &self.source_id_field)
            .finish()
    }
}

/// Where a Desk360 channel goes in Deskie.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum ChannelRoute {
    /// The Email channel: needs the customer's email.
    Email,
    /// The Calls channel: needs a phone number.
    Calls,
    /// A custom channel by id: needs a customer identifier.
    Custom(String),
    /// Not migrated; counted as skipped in the report.
    Skip,
}

impl ChannelRoute {
    /// Parses `email | calls | custom:<id> | skip`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "email" => Some(ChannelRoute::Email),
            "calls" => Some(ChannelRoute::Calls),
            "skip" => Some(ChannelRoute::Skip),
            other => other
                .strip_prefix("custom:")
                .map(str::trim)
                .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()))
                .map(|id| ChannelRoute::Custom(id.to_string())),
        }
    }

    /// The form used in the configuration and reports.
    pub fn label(&self) -> String {
        match self {
            ChannelRoute::Email => "email".into(),
            ChannelRoute::Calls => "calls".into(),
            ChannelRoute::Custom(id) => format!("custom:{id}"),
            ChannelRoute::Skip => "skip".into(),
        }
    }
}

/// Validated `[mapping]`: everything the pure mapping needs.
#[derive(Debug, Clone)]
pub struct MappingSettings {
    /// Staff id for unmapped agents.
    pub default_staff_id: i64,
    /// Desk360 agent id → staff id.
    pub agents: BTreeMap<i64, i64>,
    /// Desk360 status code → Deskie status, defaults applied: checked once here, so the
    /// mapping never meets a name it cannot send.
    pub status: BTreeMap<i64, CaseStatus>,
    /// Desk360 priority code → Deskie priority, defaults applied.
    pub priority: BTreeMap<i64, CasePriority>,
    /// Desk360 channel name (lowercased) → route; `default` for the rest.
    pub channels: BTreeMap<String, ChannelRoute>,
    /// Route for channels not named.
    pub default_channel: ChannelRoute,
    /// Desk360 type id → label id.
    pub types: BTreeMap<i64, i64>,
    /// Desk360 reason id → label id.
    pub reasons: BTreeMap<i64, i64>,
    /// Custom field for the type title.
    pub type_field: Option<String>,
    /// Custom field for the reason title.
    pub reason_field: Option<String>,
    /// Group for every case.
    pub group_id: Option<i64>,
    /// Custom channel ids declared synchronous (`custom:<id>:sync`): their create and every
    /// message carry plain `content` instead of `content_html` (recipe 003 §3.1, §3.2).
    pub sync_channels: BTreeSet<String>,
}

impl MappingSettings {
    /// The route for a Desk360 channel name (case-insensitive), falling back to `default`.
    pub fn route(&self, channel: Option<&str>) -> &ChannelRoute {
        channel
            .map(|c| c.trim().to_lowercase())
            .and_then(|c| self.channels.get(&c))
            .unwrap_or(&self.default_channel)
    }
}

/// Validated `[run]`.
#[derive(Debug, Clone, Copy)]
pub struct RunSettings {
    /// Cases in flight.
    pub concurrency: usize,
    /// Ticket details fetched concurrently.
    pub extract_concurrency: usize,
    /// Transient retries per request.
    pub max_retries: usize,
    /// How long a write whose answer was lost (timeout, cut connection) is left to land before
    /// Deskie is read to see whether it did: a read before the first request can no longer land
    /// proves nothing (a slow server or a proxy holding the request may apply it later, and a
    /// second write would duplicate it). Default 180 s: three times the 60 s that common proxies
    /// and load balancers let a request live (nginx `proxy_read_timeout`, AWS ALB idle timeout),
    /// and beyond Cloudflare's 100 s. The ticket is parked meanwhile; others go on.
    pub reconcile_settle: Duration,
}

/// How attachments reach Deskie (`[attachments] mode`, issue #12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttachmentMode {
    /// Download every file from Desk360 and send it with its message as multipart/form-data,
    /// streamed: the migrated history keeps its files after the Desk360 account is closed.
    #[default]
    Upload,
    /// Send `attachment_urls` pointing at Desk360's storage (Deskie fetches them); the files
    /// break once those links need credentials, expire, or the account is closed.
    Urls,
}

/// What happens to inline images (`<img src>` on Desk360 storage) in message HTML
/// (`[attachments] inline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InlineMode {
    /// Upload the image with its message, then edit the message so `src` points at the Deskie
    /// copy (one extra write per message with inline images).
    #[default]
    Rehost,
    /// Leave the HTML as it is.
    Keep,
}

/// Validated `[attachments]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachmentSettings {
    /// Upload or link the files.
    pub mode: AttachmentMode,
    /// Rehost or keep inline images (only meaningful with `mode = "upload"`).
    pub inline: InlineMode,
    /// Requests a minute to storage hosts other than the Desk360 API (file downloads, the dry
    /// run's link check): not charged to the Desk360 API budget, bounded so a run stays polite
    /// to a bucket or CDN that publishes no limit. Default [`DEFAULT_STORAGE_RPM`].
    pub storage_rpm: u32,
}

/// Default `[attachments] storage_rpm`: ten downloads a second, far below what a CDN or S3
/// serves, far above what the Deskie write budget can use.
pub const DEFAULT_STORAGE_RPM: u32 = 600;

impl Default for AttachmentSettings {
    fn default() -> Self {
        Self {
            mode: AttachmentMode::default(),
            inline: InlineMode::default(),
            storage_rpm: DEFAULT_STORAGE_RPM,
        }
    }
}

/// Everything validated; the only configuration type the engine uses.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Desk360.
    pub source: SourceSettings,
    /// Deskie.
    pub target: TargetSettings,
    /// Mapping rules.
    pub mapping: MappingSettings,
    /// SQLite path.
    pub store_path: PathBuf,
    /// Concurrency.
    pub run: RunSettings,
    /// How attachments and inline images are migrated.
    pub attachments: AttachmentSettings,
}

/// Reads and validates a configuration file.
pub fn load(path: &Path, secrets: SecretOverrides) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path, secrets)
}

/// Parses and validates configuration text (`path` is only used in messages and to resolve a
/// relative store path against the config file's folder).
pub fn parse(text: &str, path: &Path, secrets: SecretOverrides) -> Result<Settings, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim().replace('\n', " ").replace("  ", " "),
    })?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    validate(raw, &base_dir, secrets)
}

fn parse_url(key: &str, value: Option<&str>, default: Option<&str>) -> Result<Url, ConfigError> {
    let s = value
        .or(default)
        .ok_or_else(|| invalid(key, "is required (e.g. https://acme.deskie.io)"))?;
    let url =
        Url::parse(s.trim()).map_err(|e| invalid(key, format!("`{s}` is not a URL ({e})")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(invalid(
            key,
            format!(
                "`{s}` uses plain http; use https (plain http is allowed only to 127.0.0.1/localhost, the sandbox)"
            ),
        )),
        other => Err(invalid(
            key,
            format!("unsupported scheme `{other}`; use https"),
        )),
    }
}

/// True for 127.0.0.0/8, ::1 and localhost: the only places plain http is allowed (the policy
/// both API clients apply too).
pub use transport::is_loopback;

fn secs(key: &str, v: Option<f64>, default: f64) -> Result<Duration, ConfigError> {
    let v = v.unwrap_or(default);
    if !(v.is_finite() && v > 0.0 && v <= 86_400.0) {
        return Err(invalid(
            key,
            format!("must be a number of seconds between 0 and 86400, got {v}"),
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

fn parse_id_map<V: Clone>(
    key: &str,
    map: &BTreeMap<String, V>,
) -> Result<BTreeMap<i64, V>, ConfigError> {
    map.iter()
        .map(|(k, v)| {
            k.trim()
                .parse::<i64>()
                .map(|id| (id, v.clone()))
                .map_err(|_| {
                    invalid(
                        format!("{key}.{k}"),
                        "keys must be Desk360 numeric ids in quotes, e.g. \"74\" = 101",
                    )
                })
        })
        .collect()
}

fn custom_field_name(key: &str, v: Option<String>) -> Result<Option<String>, ConfigError> {
    match v {
        None => Ok(None),
        Some(s)
            if s.starts_with("cf_")
                && s.len() > 3
                && s[3..].chars().all(|c| c.is_ascii_digit()) =>
        {
            Ok(Some(s))
        }
        Some(s) => Err(invalid(
            key,
            format!(
                "`{s}` is not a Deskie custom field name; use the form cf_<number>, e.g. cf_900"
            ),
        )),
    }
}

fn validate(
    raw: RawConfig,
    base_dir: &Path,
    secrets: SecretOverrides,
) -> Result<Settings, ConfigError> {
    let SecretOverrides {
        desk360_token,
        desk360_email,
        desk360_password,
        deskie_api_key,
    } = secrets;
    let source = validate_source(raw.source, desk360_token, desk360_email, desk360_password)?;
    let target = validate_target(raw.target, deskie_api_key)?;
    let mapping = validate_mapping(raw.mapping)?;
    let store_path = validate_store_path(raw.store, base_dir)?;
    let run = validate_run(raw.run)?;
    let attachments = validate_attachments(&raw.attachments)?;
    Ok(Settings {
        source,
        target,
        mapping,
        store_path,
        run,
        attachments,
    })
}

/// `[source]`: where Desk360 is, how to log in, its budget and the zone of its naive times.
fn validate_source(
    s: RawSource,
    token: Option<SecretString>,
    email: Option<String>,
    password: Option<SecretString>,
) -> Result<SourceSettings, ConfigError> {
    let source_base = parse_url(
        "source.base_url",
        s.base_url.as_deref(),
        Some("https://api.desk360.com"),
    )?;
    let token = token.or_else(|| {
        s.token
            .filter(|t| !t.trim().is_empty())
            .map(SecretString::from)
    });
    let email = email.or(s.email).filter(|e| !e.trim().is_empty());
    let password =
        password.or_else(|| s.password.filter(|p| !p.is_empty()).map(SecretString::from));
    let auth = source_auth(token, email, password)?;
    let source_rpm = s.rpm.unwrap_or(100);
    if source_rpm == 0 {
        return Err(invalid(
            "source.rpm",
            "must be at least 1 (Basic plan 10, Business 100)",
        ));
    }
    let tz_name = s.timezone.unwrap_or_else(|| "UTC".to_string());
    let timezone = jiff::tz::TimeZone::get(tz_name.trim()).map_err(|_| {
        invalid(
            "source.timezone",
            format!(
                "unknown time zone `{tz_name}`; use an IANA name such as UTC or Europe/Istanbul"
            ),
        )
    })?;
    let products = s.products.unwrap_or_default();
    if let Some(p) = products.iter().find(|p| **p <= 0) {
        return Err(invalid(
            "source.products",
            format!("product ids are positive numbers, got {p}"),
        ));
    }
    Ok(SourceSettings {
        base_url: source_base,
        auth,
        rpm: source_rpm,
        products,
        timezone,
        timezone_name: tz_name,
        window: secs("source.window_secs", s.window_secs, 60.0)?,
        timeout: secs("source.timeout_secs", s.timeout_secs, 30.0)?,
    })
}

/// The Desk360 credentials: a token wins; otherwise email and password, both required.
fn source_auth(
    token: Option<SecretString>,
    email: Option<String>,
    password: Option<SecretString>,
) -> Result<SourceAuth, ConfigError> {
    match (token, email, password) {
        (Some(t), _, _) => Ok(SourceAuth::Token(t)),
        (None, Some(email), Some(password)) => Ok(SourceAuth::Login { email, password }),
        (None, Some(_), None) => Err(invalid(
            "source.password",
            "is required with source.email (or set DESK360_PASSWORD), or give a token instead",
        )),
        (None, None, _) => Err(invalid(
            "source.token",
            "is required: set it, or DESK360_TOKEN, or source.email + source.password (Desk360 panel > Settings > API)",
        )),
    }
}

/// `[target]`: the Deskie account, its credentials and the request budget its plan allows.
fn validate_target(
    t: RawTarget,
    api_key: Option<SecretString>,
) -> Result<TargetSettings, ConfigError> {
    let target_base = parse_url("target.base_url", t.base_url.as_deref(), None)?;
    let staff_email = t
        .staff_email
        .filter(|e| e.contains('@'))
        .ok_or_else(|| invalid("target.staff_email", "is required: the email of an active agent account (not the admin) whose API key you use"))?;
    let api_key = api_key
        .or_else(|| t.api_key.filter(|k| !k.trim().is_empty()).map(SecretString::from))
        .ok_or_else(|| invalid("target.api_key", "is required: set it or DESKIE_API_KEY (Deskie admin > Settings > API > add API key)"))?;
    let plan_name = t.plan.as_deref().unwrap_or("standard");
    let plan = Plan::parse(plan_name).ok_or_else(|| {
        invalid(
            "target.plan",
            format!(
                "`{}` is not a plan; use {}",
                plan_name.trim(),
                one_of(Plan::ALL.map(Plan::as_str))
            ),
        )
    })?;
    let agents = t.agents.unwrap_or(20);
    if agents == 0 {
        return Err(invalid(
            "target.agents",
            "must be the number of enabled agents in Deskie (at least 1)",
        ));
    }
    let target_window = secs("target.window_secs", t.window_secs, 60.0)?;
    let rpm = target_rpm(plan, agents, t.rpm, target_window)?;
    Ok(TargetSettings {
        base_url: target_base,
        staff_email,
        api_key,
        plan,
        agents,
        rpm,
        rpm_ceiling: t.rpm,
        source_id_field: custom_field_name("target.source_id_field", t.source_id_field)?,
        window: target_window,
        timeout: secs("target.timeout_secs", t.timeout_secs, 30.0)?,
    })
}

/// Deskie units per window: the explicit `target.rpm` if given (never above the plan's cap on a
/// real one-minute window), otherwise the plan's rule for the agents.
fn target_rpm(
    plan: Plan,
    agents: u32,
    explicit: Option<u32>,
    window: Duration,
) -> Result<u32, ConfigError> {
    // The plan caps are per minute; a shorter window only exists against the sandbox.
    let real_window = window == Duration::from_secs(60);
    match explicit {
        Some(0) => Err(invalid(
            "target.rpm",
            "must be at least 1, or removed to use the plan's rule",
        )),
        Some(r) if real_window && r > plan.max_rpm() => Err(invalid(
            "target.rpm",
            format!(
                "{r} is above the {} plan's maximum of {} RPM; lower it or remove it to use the plan's rule",
                plan.as_str(),
                plan.max_rpm()
            ),
        )),
        Some(r) => Ok(r),
        None => Ok(plan.rpm_for(agents)),
    }
}

/// `[mapping]`: every Desk360 code and name resolved to its Deskie counterpart.
fn validate_mapping(m: RawMapping) -> Result<MappingSettings, ConfigError> {
    let default_staff_id = m
        .default_staff_id
        .ok_or_else(|| invalid("mapping.default_staff_id", "is required: the Deskie staff id that receives messages of Desk360 agents with no mapping"))?;
    let status = status_map(&m.status)?;
    let priority = priority_map(&m.priority)?;
    let routes = channel_routes(&m.channels)?;
    Ok(MappingSettings {
        default_staff_id,
        agents: parse_id_map("mapping.agents", &m.agents)?,
        status,
        priority,
        channels: routes.channels,
        default_channel: routes.default_channel,
        types: parse_id_map("mapping.types", &m.types)?,
        reasons: parse_id_map("mapping.reasons", &m.reasons)?,
        type_field: custom_field_name("mapping.type_field", m.type_field)?,
        reason_field: custom_field_name("mapping.reason_field", m.reason_field)?,
        group_id: m.group_id,
        sync_channels: routes.sync_channels,
    })
}

/// `[mapping.status]` over the defaults (Desk360 0 → open, 1 → closed, 2 → waiting).
fn status_map(raw: &BTreeMap<String, String>) -> Result<BTreeMap<i64, CaseStatus>, ConfigError> {
    let mut status: BTreeMap<i64, CaseStatus> = [
        (0, CaseStatus::Open),
        (1, CaseStatus::Closed),
        (2, CaseStatus::Waiting),
    ]
    .into_iter()
    .collect();
    for (k, v) in parse_id_map("mapping.status", raw)? {
        let s = CaseStatus::parse(&v).ok_or_else(|| {
            invalid(
                format!("mapping.status.{k}"),
                format!(
                    "`{v}` is not a Deskie status; use {}",
                    one_of(CaseStatus::ALL.map(CaseStatus::as_str))
                ),
            )
        })?;
        status.insert(k, s);
    }
    Ok(status)
}

/// `[mapping.priority]` over the defaults (Desk360 0 → low, 1 → normal, 2 → high,
/// 3 → critical).
fn priority_map(
    raw: &BTreeMap<String, String>,
) -> Result<BTreeMap<i64, CasePriority>, ConfigError> {
    let mut priority: BTreeMap<i64, CasePriority> = [
        (0, CasePriority::Low),
        (1, CasePriority::Normal),
        (2, CasePriority::High),
        (3, CasePriority::Critical),
    ]
    .into_iter()
    .collect();
    for (k, v) in parse_id_map("mapping.priority", raw)? {
        let p = CasePriority::parse(&v).ok_or_else(|| {
            invalid(
                format!("mapping.priority.{k}"),
                format!(
                    "`{v}` is not a Deskie priority; use {}",
                    one_of(CasePriority::ALL.map(CasePriority::as_str))
                ),
            )
        })?;
        priority.insert(k, p);
    }
    Ok(priority)
}

/// "a, b or c": the accepted values, for an error message.
fn one_of<const N: usize>(names: [&str; N]) -> String {
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => (*last).to_string(),
        None => String::new(),
    }
}

/// `[mapping.channels]` resolved.
struct ChannelRoutes {
    channels: BTreeMap<String, ChannelRoute>,
    default_channel: ChannelRoute,
    sync_channels: BTreeSet<String>,
}

/// `[mapping.channels]`: each Desk360 channel name (lowercased) to its route, `default` for the
/// rest (Email unless configured), and the custom channels declared synchronous.
fn channel_routes(raw: &BTreeMap<String, String>) -> Result<ChannelRoutes, ConfigError> {
    let mut routes = ChannelRoutes {
        channels: BTreeMap::new(),
        default_channel: ChannelRoute::Email,
        sync_channels: BTreeSet::new(),
    };
    for (name, value) in raw {
        // `custom:<id>:sync` declares a synchronous custom channel (recipe 003 §3.1, §3.2).
        let (value, sync) = match value.trim().strip_suffix(":sync") {
            Some(v) if v.trim_start().starts_with("custom:") => (v, true),
            _ => (value.as_str(), false),
        };
        let route = ChannelRoute::parse(value).ok_or_else(|| {
            invalid(
                format!("mapping.channels.{name}"),
                format!(
                    "`{value}` is not a route; use email, calls, custom:<channel id>, custom:<channel id>:sync or skip"
                ),
            )
        })?;
        if let (true, ChannelRoute::Custom(id)) = (sync, &route) {
            routes.sync_channels.insert(id.clone());
        }
        if name.trim().eq_ignore_ascii_case("default") {
            routes.default_channel = route;
        } else {
            routes.channels.insert(name.trim().to_lowercase(), route);
        }
    }
    Ok(routes)
}

/// `[store] path`, relative to the config file's folder, in a folder that exists and is
/// writable.
fn validate_store_path(store: RawStore, base_dir: &Path) -> Result<PathBuf, ConfigError> {
    let store_path = store
        .path
        .unwrap_or_else(|| PathBuf::from("deskie-import.sqlite"));
    let store_path = if store_path.is_relative() && !base_dir.as_os_str().is_empty() {
        base_dir.join(store_path)
    } else {
        store_path
    };
    check_store_writable(&store_path)?;
    Ok(store_path)
}

/// `[run]`: concurrency within sane bounds, retries capped at 20.
fn validate_run(r: RawRun) -> Result<RunSettings, ConfigError> {
    let concurrency = r.concurrency.unwrap_or(8);
    if !(1..=256).contains(&concurrency) {
        return Err(invalid(
            "run.concurrency",
            format!("must be between 1 and 256, got {concurrency}"),
        ));
    }
    let extract_concurrency = r.extract_concurrency.unwrap_or(4);
    if !(1..=64).contains(&extract_concurrency) {
        return Err(invalid(
            "run.extract_concurrency",
            format!("must be between 1 and 64, got {extract_concurrency}"),
        ));
    }
    Ok(RunSettings {
        concurrency,
        extract_concurrency,
        max_retries: r.max_retries.unwrap_or(5).min(20),
        reconcile_settle: secs("run.reconcile_settle_secs", r.reconcile_settle_secs, 180.0)?,
    })
}

/// `[attachments]`: mode, inline handling and the storage download budget.
fn validate_attachments(a: &RawAttachments) -> Result<AttachmentSettings, ConfigError> {
    let mode = match a.mode.as_deref().map(str::trim) {
        None | Some("upload") => AttachmentMode::Upload,
        Some("urls") => AttachmentMode::Urls,
        Some(other) => {
            return Err(invalid(
                "attachments.mode",
                format!("must be \"upload\" or \"urls\", got {other:?}"),
            ));
        }
    };
    let inline = match a.inline.as_deref().map(str::trim) {
        None | Some("rehost") => InlineMode::Rehost,
        Some("keep") => InlineMode::Keep,
        Some(other) => {
            return Err(invalid(
                "attachments.inline",
                format!("must be \"rehost\" or \"keep\", got {other:?}"),
            ));
        }
    };
    let storage_rpm = a.storage_rpm.unwrap_or(DEFAULT_STORAGE_RPM);
    if storage_rpm == 0 {
        return Err(invalid(
            "attachments.storage_rpm",
            "must be at least 1 (downloads a minute from attachment storage)".to_string(),
        ));
    }
    Ok(AttachmentSettings {
        mode,
        inline,
        storage_rpm,
    })
}

/// The store's folder must exist and be writable; checked without creating the store itself.
fn check_store_writable(path: &Path) -> Result<(), ConfigError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let meta = std::fs::metadata(&dir).map_err(|_| {
        invalid(
            "store.path",
            format!(
                "folder `{}` does not exist; create it or point store.path elsewhere",
                dir.display()
            ),
        )
    })?;
    if !meta.is_dir() {
        return Err(invalid(
            "store.path",
            format!("`{}` is not a folder", dir.display()),
        ));
    }
    if meta.permissions().readonly() {
        return Err(invalid(
            "store.path",
            format!(
                "folder `{}` is read-only; choose a writable place",
                dir.display()
            ),
        ));
    }
    if path.is_dir() {
        return Err(invalid(
            "store.path",
            format!(
                "`{}` is a folder; give a file name such as deskie-import.sqlite",
                path.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[source]
token = "t0k3n"
[target]
base_url = "https://acme.deskie.io"
staff_email = "agent@acme.example"
api_key = "k3y"
[mapping]
default_staff_id = 100
"#;

    fn parse_str(s: &str) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        parse(s, &path, SecretOverrides::default())
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let s = parse_str(MINIMAL).unwrap();
        assert_eq!(s.source.rpm, 100);
        assert_eq!(s.target.plan, Plan::Standard);
        assert_eq!(s.target.rpm, 100); // 20 agents × 5
        assert_eq!(s.mapping.status[&1], CaseStatus::Closed);
        assert_eq!(s.mapping.priority[&3], CasePriority::Critical);
        assert_eq!(s.mapping.default_channel, ChannelRoute::Email);
        assert_eq!(s.run.concurrency, 8);
        assert_eq!(s.source.window, Duration::from_secs(60));
    }

    #[test]
    fn storage_rpm_defaults_to_600_and_must_be_positive() {
        let s = parse_str(MINIMAL).unwrap();
        assert_eq!(s.attachments.storage_rpm, DEFAULT_STORAGE_RPM);
        let s = parse_str(&format!("{MINIMAL}\n[attachments]\nstorage_rpm = 42\n")).unwrap();
        assert_eq!(s.attachments.storage_rpm, 42);
        let err = parse_str(&format!("{MINIMAL}\n[attachments]\nstorage_rpm = 0\n")).unwrap_err();
        assert!(err.to_string().contains("attachments.storage_rpm"), "{err}");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = parse_str(&format!("{MINIMAL}\n[run]\nconcurency = 3\n")).unwrap_err();
        assert!(err.to_string().contains("concurency"), "{err}");
    }

    #[test]
    fn plan_rules() {
        assert_eq!(Plan::Basic.rpm_for(1), 20);
        assert_eq!(Plan::Basic.rpm_for(10), 50);
        assert_eq!(Plan::Basic.rpm_for(100), 50);
        assert_eq!(Plan::Standard.rpm_for(100), 500);
        assert_eq!(Plan::Standard.rpm_for(200), 750);
        assert_eq!(Plan::Pro.rpm_for(100), 1000);
        assert_eq!(Plan::Pro.rpm_for(1000), 1500);
        let err = parse_str(&MINIMAL.replace(
            "api_key = \"k3y\"",
            "api_key = \"k3y\"\nplan = \"basic\"\nrpm = 60",
        ))
        .unwrap_err();
        assert!(err.to_string().contains("target.rpm"), "{err}");
    }

    #[test]
    fn bad_vocabulary_names_the_key_and_the_allowed_values() {
        let err = parse_str(&format!("{MINIMAL}status = {{ \"1\" = \"done\" }}\n")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("mapping.status.1"), "{msg}");
        assert!(msg.contains("use open, waiting or closed"), "{msg}");
        let err =
            parse_str(&format!("{MINIMAL}priority = {{ \"3\" = \"urgent\" }}\n")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("mapping.priority.3"), "{msg}");
        assert!(msg.contains("use low, normal, high or critical"), "{msg}");
        let err = parse_str(&MINIMAL.replace(
            "api_key = \"k3y\"",
            "api_key = \"k3y\"\nplan = \"enterprise\"",
        ))
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("target.plan"), "{msg}");
        assert!(
            msg.contains("`enterprise` is not a plan; use basic, standard or pro"),
            "{msg}"
        );
    }

    #[test]
    fn configured_codes_are_held_as_deskie_values() {
        let s = parse_str(&format!(
            "{MINIMAL}status = {{ \"7\" = \"waiting\" }}\npriority = {{ \"1\" = \"high\" }}\n"
        ))
        .unwrap();
        assert_eq!(s.mapping.status[&7], CaseStatus::Waiting);
        assert_eq!(s.mapping.status[&0], CaseStatus::Open);
        assert_eq!(s.mapping.priority[&1], CasePriority::High);
        assert_eq!(s.mapping.priority[&0], CasePriority::Low);
        let s = parse_str(&MINIMAL.replace(
            "api_key = \"k3y\"",
            "api_key = \"k3y\"\nplan = \"pro\"\nagents = 3",
        ))
        .unwrap();
        assert_eq!(s.target.plan, Plan::Pro);
        assert_eq!(s.target.rpm, 30);
    }

    #[test]
    fn plain_http_only_to_loopback() {
        let err = parse_str(&MINIMAL.replace("https://acme.deskie.io", "http://acme.deskie.io"))
            .unwrap_err();
        assert!(err.to_string().contains("plain http"), "{err}");
        parse_str(&MINIMAL.replace("https://acme.deskie.io", "http://127.0.0.1:8080")).unwrap();
    }

    #[test]
    fn mapping_values_are_checked() {
        let err = parse_str(&format!("{MINIMAL}status = {{ \"1\" = \"done\" }}\n")).unwrap_err();
        assert!(err.to_string().contains("mapping.status.1"), "{err}");
        let err =
            parse_str(&format!("{MINIMAL}channels = {{ \"Email\" = \"fax\" }}\n")).unwrap_err();
        assert!(err.to_string().contains("mapping.channels.Email"), "{err}");
        let s = parse_str(&format!("{MINIMAL}channels = {{ \"default\" = \"skip\", \"Phone\" = \"calls\", \"Web\" = \"custom:481\" }}\n")).unwrap();
        assert_eq!(s.mapping.route(Some("phone")), &ChannelRoute::Calls);
        assert_eq!(
            s.mapping.route(Some("WEB")),
            &ChannelRoute::Custom("481".into())
        );
        assert_eq!(s.mapping.route(Some("Facebook")), &ChannelRoute::Skip);
        assert_eq!(s.mapping.route(None), &ChannelRoute::Skip);
    }

    #[test]
    fn secrets_from_environment_win_and_are_required() {
        let no_key = MINIMAL.replace("api_key = \"k3y\"\n", "");
        let err = parse_str(&no_key).unwrap_err();
        assert!(err.to_string().contains("DESKIE_API_KEY"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let s = parse(
            &no_key,
            &dir.path().join("c.toml"),
            SecretOverrides {
                deskie_api_key: Some(SecretString::from("from-env")),
                ..SecretOverrides::default()
            },
        )
        .unwrap();
        use secrecy::ExposeSecret;
        assert_eq!(s.target.api_key.expose_secret(), "from-env");
        // Secrets never show in Debug output.
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("from-env") && !dbg.contains("t0k3n"), "{dbg}");
    }

    #[test]
    fn store_folder_must_exist() {
        let err = parse_str(&format!(
            "{MINIMAL}[store]\npath = \"/nonexistent/dir/x.sqlite\"\n"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("store.path"), "{err}");
    }

    #[test]
    fn timezone_is_checked() {
        let err = parse_str(&MINIMAL.replace(
            "token = \"t0k3n\"",
            "token = \"t0k3n\"\ntimezone = \"Mars/Olympus\"",
        ))
        .unwrap_err();
        assert!(err.to_string().contains("source.timezone"), "{err}");
    }
}
