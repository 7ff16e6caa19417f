//! Logging: text or JSON lines on stderr, filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// async-openai logs on its own what our redaction never sees: the whole body of a reply it
/// cannot decode (at ERROR: a model's text, which may quote the data it was shown, of any
/// length), and every 5xx body (at WARN: a proxy's may echo the API key). Our own warnings say
/// what failed, redacted, so the crate's logs are off unless `RUST_LOG` names it.
const QUIETED: &str = "async_openai=off";

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init(format: LogFormat, filter: &str) {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter(filter))
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn env_filter(filter: &str) -> EnvFilter {
    let filter =
        if filter.contains("async_openai") { filter.to_string() } else { format!("{filter},{QUIETED}") };
    EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new(format!("info,{QUIETED}")))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(filter: &str) -> String {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(env_filter(filter))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "async_openai::error", "failed deserialization of: the model's reply");
            tracing::warn!(target: "async_openai::client", "Server error: 500 - the model's reply");
            tracing::error!(target: "agensium::ai", "model summary failed");
        });
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_models_undecodable_reply_is_not_logged() {
        for filter in ["info", "debug", "agensium=trace", "not a filter ==="] {
            let text = logged(filter);
            assert!(!text.contains("the model's reply"), "{filter}: {text}");
            assert!(text.contains("model summary failed"), "{filter}: {text}");
        }
        // Asked for by name, it is shown.
        assert!(logged("info,async_openai=error").contains("the model's reply"));
    }
}
