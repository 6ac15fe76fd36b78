//! Which series an export shows: the instance's `filter` option and a request's `?filter=`, both
//! when both are given, evaluated on the store's series (a process, or the cluster view whose
//! `process.*` fields are missing).

use std::borrow::Cow;
use std::sync::Arc;

use super::{Origin, Process};
use crate::filter::{Field, Fields, Filter, SeriesFields};
use crate::snapshot::SeriesKey;

/// A set of filters a series must all pass (none: every series passes). Cheap to clone.
#[derive(Clone, Default)]
pub struct Selection {
    filters: Vec<Arc<Filter>>,
}

impl Selection {
    /// The series `filter` keeps (every series when None).
    pub fn new(filter: Option<Filter>) -> Selection {
        Selection {
            filters: filter.into_iter().map(Arc::new).collect(),
        }
    }

    /// This selection narrowed by `filter` too.
    pub fn and(&self, filter: Filter) -> Selection {
        let mut filters = self.filters.clone();
        filters.push(Arc::new(filter));
        Selection { filters }
    }

    /// True when there is no filter.
    pub fn is_all(&self) -> bool {
        self.filters.is_empty()
    }

    /// Whether the series `key` of `process` (None: the cluster view) is shown. The host and
    /// title are the serving process's (`origin`): workers run on its host, and their title is
    /// not sent to the master.
    pub fn keeps(&self, origin: &Origin, key: &SeriesKey, process: Option<&Process>) -> bool {
        if self.filters.is_empty() {
            return true;
        }
        let fields = ExportFields {
            series: SeriesFields { key, process: None },
            process,
            origin,
        };
        self.filters.iter().all(|f| f.matches(&fields))
    }
}

/// A stored series' filter fields: the key's from [`SeriesFields`], the process's read from the
/// store's [`Process`] and the origin without building a `ProcessFields` per series.
struct ExportFields<'a> {
    series: SeriesFields<'a>,
    process: Option<&'a Process>,
    origin: &'a Origin,
}

impl Fields for ExportFields<'_> {
    fn get(&self, field: &Field) -> Option<Cow<'_, str>> {
        let process = || self.process;
        Some(match field {
            Field::Role => Cow::Borrowed(process()?.role()),
            Field::Pid => Cow::Owned(process()?.pid.to_string()),
            Field::Worker => Cow::Owned(process()?.worker()?.to_string()),
            Field::Host => Cow::Borrowed(process().map(|_| self.origin.host.as_str())?),
            Field::Title => Cow::Borrowed(process().map(|_| self.origin.title.as_str())?),
            _ => return self.series.get(field),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gather::Tree;

    #[test]
    fn filters_add_up_and_process_fields_come_from_the_store() {
        let origin = Origin {
            host: "h1".into(),
            title: "node".into(),
            ..Origin::default()
        };
        let requests = SeriesKey::new("inc", &["http"], r#"requests{method="GET"}"#);
        let worker = Process {
            from: Tree::Thread("2:5".into()),
            pid: 77,
        };
        assert!(Selection::default().keeps(&origin, &requests, None));
        let parse = |e: &str| Filter::parse(e).unwrap();
        let http = Selection::new(Some(parse("name LIKE 'http.%'")));
        assert!(http.keeps(&origin, &requests, None));
        let get = http.and(parse("tags.method = 'GET' AND type = 'inc'"));
        assert!(get.keeps(&origin, &requests, Some(&worker)));
        assert!(!get.keeps(&origin, &SeriesKey::new("inc", &["http"], "requests"), None));
        // The cluster view has no process fields; a thread has its process's worker id.
        let second = Selection::new(Some(parse(
            "process.worker = '2' AND process.role = 'thread' AND process.pid = '77' \
             AND process.host = 'h1' AND process.title = 'node'",
        )));
        assert!(second.keeps(&origin, &requests, Some(&worker)));
        assert!(!second.keeps(&origin, &requests, None));
        let master = Process {
            from: Tree::Master,
            pid: 1,
        };
        assert!(!second.keeps(&origin, &requests, Some(&master)));
    }
}
