//! Content negotiation: which text format a scrape gets, and its `Content-Type`.

/// The exposition formats.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TextFormat {
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

/// Picks the format for a request's `Accept` header: OpenMetrics when the best-ranked media
/// range it accepts is `application/openmetrics-text` (no version, `1.0.0` or `0.0.1`); else
/// (text/plain, wildcards, nothing we write, an empty header) the Prometheus text format.
///
/// Ranked as HTTP content negotiation does (and Prometheus' client_golang): by `q` (default 1;
/// `q=0` refuses), then specificity (`type/subtype` over `type/*` over `*/*`), then the order in
/// the header. Prometheus 2.x's scrapes ask for OpenMetrics first, Prometheus 3's for
/// OpenMetrics at q=0.5 over text at q=0.3 (both get OpenMetrics), `curl` gets text.
pub fn negotiate(accept: &str) -> TextFormat {
    let mut best: Option<(f64, u8, TextFormat)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let (mut q, mut version) = (1.0, None);
        for param in parts {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            let value = value.trim().trim_matches('"');
            match name.trim().to_ascii_lowercase().as_str() {
                "q" => q = value.parse::<f64>().unwrap_or(-1.0),
                "version" => version = Some(value.to_string()),
                _ => {}
            }
        }
        if !(q > 0.0 && q <= 1.0) {
            continue;
        }
        let choice = match media.as_str() {
            "application/openmetrics-text" => match version.as_deref() {
                None | Some("1.0.0") | Some("0.0.1") => (2, TextFormat::OpenMetrics),
                Some(_) => continue,
            },
            "text/plain" => (2, TextFormat::Prometheus),
            "text/*" => (1, TextFormat::Prometheus),
            "application/*" => (1, TextFormat::OpenMetrics),
            "*/*" => (0, TextFormat::Prometheus),
            _ => continue,
        };
        // Strictly better only: on a tie the earlier range wins.
        if best.is_none_or(|(bq, bs, _)| q > bq || (q == bq && choice.0 > bs)) {
            best = Some((q, choice.0, choice.1));
        }
    }
    best.map_or(TextFormat::Prometheus, |b| b.2)
}

/// The `Content-Type` of a format's answer.
pub fn content_type(format: TextFormat) -> &'static str {
    match format {
        TextFormat::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        TextFormat::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
    }
}
