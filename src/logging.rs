//! `tracing` output: human-readable or JSON lines on stdout. `RUST_LOG` overrides `log.level`.
//! Nothing in this crate logs a password, token, key or cookie value at any level.
//!
//! Lines are handed to a writer thread and written in batches: one access line per request
//! would otherwise cost a `write` system call on the request path.

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::access_log::AccessLog;
use crate::config::{LogConfig, LogFormat};

/// Installs the subscriber and returns the access log writing to the same place. Keep the
/// guard alive until exit: dropping it flushes what is still buffered.
pub fn init(config: &LogConfig) -> (AccessLog, WorkerGuard) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stdout());
    // Never lossy: under overload a request waits for the log rather than vanishing from it.
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("portcullis-log")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stdout(),
        ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_ansi(colour)
        .with_writer(writer.clone());
    let _ = match config.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    (AccessLog::new(writer, config.format), guard)
}
