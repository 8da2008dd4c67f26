//! The crate's `tracing` output, captured for the tests that check what is logged.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Subscriber, span};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Collects everything the tracing subscriber writes.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Everything the crate logs, from every test in this binary, at every level.
///
/// A process-wide subscriber rather than a per-test `set_default`: tracing caches per call site
/// whether anyone listens, and a sibling test on a thread with no subscriber would otherwise
/// switch the crate's call sites off for this one (tokio-rs/tracing#3611). As a bonus, the logs
/// of every test, all of which use the same client secret, are checked.
pub fn crate_logs() -> &'static Captured {
    &subscriber().0
}

/// Every span closed so far, the crate's and the tests' own, with its fields and its parent.
pub fn closed_spans() -> &'static Spans {
    &subscriber().1
}

fn subscriber() -> &'static (Captured, Spans) {
    static LOGS: OnceLock<(Captured, Spans)> = OnceLock::new();
    LOGS.get_or_init(|| {
        let (captured, spans) = (Captured::default(), Spans::default());
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(captured.clone())
                    .with_ansi(false),
            )
            .with(spans.clone())
            .with(
                Targets::new()
                    .with_target("reqwest_alf", tracing::Level::TRACE)
                    .with_target("all", tracing::Level::TRACE),
            );
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other test sets a global subscriber");
        (captured, spans)
    })
}

/// A span as it was when it closed.
#[derive(Clone, Debug)]
pub struct ClosedSpan {
    pub name: String,
    pub parent: Option<String>,
    pub fields: HashMap<String, String>,
}

impl ClosedSpan {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// Collects spans as they close.
#[derive(Clone, Default)]
pub struct Spans(Arc<Mutex<Vec<ClosedSpan>>>);

impl Spans {
    /// The spans closed so far for which `keep` holds.
    pub fn matching(&self, keep: impl Fn(&ClosedSpan) -> bool) -> Vec<ClosedSpan> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|s| keep(s))
            .cloned()
            .collect()
    }
}

/// A span's fields so far, kept in its extensions.
#[derive(Default)]
struct Fields(HashMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        let mut fields = Fields::default();
        attributes.record(&mut fields);
        if let Some(span) = context.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, context: Context<'_, S>) {
        if let Some(span) = context.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(fields);
        }
    }

    fn on_close(&self, id: span::Id, context: Context<'_, S>) {
        let Some(span) = context.span(&id) else {
            return;
        };
        let fields = span.extensions_mut().remove::<Fields>().unwrap_or_default();
        self.0.lock().unwrap().push(ClosedSpan {
            name: span.name().to_owned(),
            parent: span.parent().map(|parent| parent.name().to_owned()),
            fields: fields.0,
        });
    }
}

impl Captured {
    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
