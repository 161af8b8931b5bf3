//! Logs of the `sipwire` binary: on stderr, as text or one JSON object per line, filtered by
//! `SIPWIRE_LOG` (tracing `EnvFilter` directives, default `info`). The filter sits behind a
//! reload layer so that a running gateway changes its levels per module on an admin call,
//! without a restart.

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// The environment variable holding the initial filter.
pub const LOG_ENV: &str = "SIPWIRE_LOG";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, message and fields).
    Json,
}

/// Errors of a filter change.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The directives do not parse.
    #[error("invalid log filter {directives:?}: {source}")]
    Filter {
        /// What was asked.
        directives: String,
        /// Why it does not parse.
        source: tracing_subscriber::filter::ParseError,
    },
    /// The subscriber is gone (the process is exiting).
    #[error("cannot change the log filter: {0}")]
    Reload(#[from] reload::Error),
}

/// Changes the log filter of the running process.
#[derive(Clone)]
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
}

impl std::fmt::Debug for LogControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogControl")
            .field("filter", &self.current())
            .finish()
    }
}

impl LogControl {
    /// Replaces the filter by `directives` (EnvFilter syntax, e.g.
    /// `info,sipwire::transport=debug`); returns the filter now in force.
    pub fn set(&self, directives: &str) -> Result<String, LogError> {
        let filter = EnvFilter::try_new(directives).map_err(|source| LogError::Filter {
            directives: directives.to_owned(),
            source,
        })?;
        self.handle.reload(filter)?;
        Ok(self.current())
    }

    /// The filter in force.
    pub fn current(&self) -> String {
        self.handle
            .with_current(|f| f.to_string())
            .unwrap_or_default()
    }
}

/// The initial filter: `SIPWIRE_LOG` if set and valid, else `info`.
fn initial_filter() -> EnvFilter {
    EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the process-wide subscriber (stderr, `format`); returns its filter control.
/// Call once, before anything logs.
pub fn init(format: LogFormat) -> LogControl {
    let (filter, handle) = reload::Layer::new(initial_filter());
    // Colours only on a terminal: journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let text = (format == LogFormat::Text).then(|| {
        tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(std::io::stderr)
    });
    let json = (format == LogFormat::Json).then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .init();
    LogControl { handle }
}
