//! gzip for the server's text answers: whether a request accepts it (`Accept-Encoding`), which
//! answers are worth it (text), and the compression, which runs on the render thread after the
//! handler (never on the server's own thread, nor on the JS thread).
//!
//! A Prometheus exposition is text that repeats itself (metric names, label sets): gzip makes it
//! about a tenth of its size, which is what a scrape of a million series (~57 MB) needs on a
//! network. Prometheus asks for gzip on every scrape (`Accept-Encoding: gzip`).

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

/// Whether an `Accept-Encoding` value (several headers joined with `,`) accepts gzip: `gzip` (or
/// its alias `x-gzip`), else `*`, with a quality above 0 (`gzip;q=0` refuses it; no `q` is 1).
/// An explicit `gzip` entry wins over `*`; a quality that is not a number refuses the entry.
pub fn accepts(accept_encoding: &str) -> bool {
    let mut star = None;
    for entry in accept_encoding.split(',') {
        let mut parts = entry.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let mut quality = 1.0;
        for parameter in parts {
            if let Some((name, value)) = parameter.split_once('=') {
                if name.trim().eq_ignore_ascii_case("q") {
                    quality = value.trim().parse::<f64>().unwrap_or(0.0);
                }
            }
        }
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return quality > 0.0;
        }
        if coding == "*" {
            star = Some(quality > 0.0);
        }
    }
    star.unwrap_or(false)
}

/// Whether answers of this `Content-Type` are compressed: text (`text/*`: the exposition, the
/// live page, plain-text errors) and JSON (`/metrics.json`, the Pandora and Panoptes routes,
/// the live page's API). Such answers carry `Vary: Accept-Encoding`, compressed or not.
pub fn compressible(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let essence = essence.to_ascii_lowercase();
    essence.starts_with("text/")
        || essence == "application/json"
        || essence.ends_with("+json")
        || essence == "application/openmetrics-text"
}

/// `body` gzip-compressed at level 1: on exposition text it gives nearly the ratio of the
/// default level (6) at several times its speed, and the time is spent per scrape.
pub fn compress(body: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 8 + 64), Compression::fast());
    // Writing to a Vec cannot fail.
    encoder.write_all(body).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    #[test]
    fn accept_encoding_is_read_as_http_says() {
        for yes in [
            "gzip",
            "GZIP",
            "x-gzip",
            "deflate, gzip",
            "gzip;q=0.5",
            "gzip ; q=1.0",
            "br;q=1.0, gzip;q=0.8, *;q=0.1",
            "*",
            "identity, *;q=0.5",
            "deflate,gzip;q=1",
        ] {
            assert!(accepts(yes), "{yes:?} accepts gzip");
        }
        for no in [
            "",
            "identity",
            "deflate, br",
            "gzip;q=0",
            "gzip;q=0.000",
            "gzip;q=zero",
            "*;q=0",
            "gzip;q=0, *",
            "gzipx",
        ] {
            assert!(!accepts(no), "{no:?} does not accept gzip");
        }
    }

    #[test]
    fn text_and_json_are_compressible_others_not() {
        for yes in [
            "text/plain; version=0.0.4; charset=utf-8",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            "application/json",
            "application/json; charset=utf-8",
            "text/html; charset=utf-8",
            "application/problem+json",
            "Text/Plain",
        ] {
            assert!(compressible(yes), "{yes:?}");
        }
        for no in ["", "application/octet-stream", "image/png", "text"] {
            assert!(!compressible(no), "{no:?}");
        }
    }

    #[test]
    fn compress_round_trips() {
        let text = "http_requests_total{worker=\"1\"} 12\n".repeat(10_000);
        let gz = compress(text.as_bytes());
        assert!(
            gz.len() * 20 < text.len(),
            "{} bytes of {}",
            gz.len(),
            text.len()
        );
        let mut back = String::new();
        GzDecoder::new(&gz[..]).read_to_string(&mut back).unwrap();
        assert_eq!(back, text);
        let mut empty = Vec::new();
        GzDecoder::new(&compress(b"")[..])
            .read_to_end(&mut empty)
            .unwrap();
        assert!(empty.is_empty());
    }
}
