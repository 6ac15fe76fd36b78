//! `Panopticon.filter`'s native side: a filter expression compiled by the core
//! (`panoptic_core::filter`), testing the series JS hands over, a tree's worth at a time.
//! `lib/filter.js` checks the arguments and walks deliveries; the fields of a series are read as
//! the exports read them (`SeriesFields`).

use std::borrow::Cow;

use napi::Either;
use napi_derive::napi;
use panoptic_core::filter::{Field, Fields, Filter, ProcessFields, Role, SeriesFields};
use panoptic_core::snapshot::SeriesKey;

use crate::error::{filter_problem, FilterProblem};

/// A compiled filter expression (made by `compileFilter`).
#[napi]
pub struct NativeFilter {
    filter: Filter,
}

/// A series to test: its path, its id (tagged or not) and its logger method.
#[napi(object)]
pub struct FilterSeries {
    /// Path elements.
    pub path: Vec<String>,
    /// The id, tagged or not (`requests{status="200"}`).
    pub id: String,
    /// The logger method.
    #[napi(js_name = "type")]
    pub method: String,
}

/// `process.role`.
#[napi(string_enum = "lowercase")]
pub enum FilterRole {
    /// The master, or a process outside a cluster.
    Master,
    /// A cluster worker.
    Worker,
    /// A worker thread.
    Thread,
}

/// The process of the series tested; a field left out is missing to the filter.
#[napi(object)]
pub struct FilterProcess {
    /// `process.role`.
    pub role: FilterRole,
    /// `process.pid`.
    pub pid: Option<u32>,
    /// `process.worker`: the cluster worker id.
    pub worker: Option<u32>,
    /// `process.host`.
    pub host: Option<String>,
    /// `process.title`.
    pub title: Option<String>,
}

/// Compiles `expression`: the filter, or what is wrong with the expression.
#[napi(catch_unwind)]
pub fn compile_filter(expression: String) -> Either<NativeFilter, FilterProblem> {
    match Filter::parse(&expression) {
        Ok(filter) => Either::A(NativeFilter { filter }),
        Err(e) => Either::B(filter_problem(e)),
    }
}

#[napi]
impl NativeFilter {
    /// The expression it was compiled from.
    #[napi(getter)]
    pub fn expression(&self) -> String {
        self.filter.expression().to_string()
    }

    /// Whether each of `series` (all from `process`, or from the merged cluster view when it is
    /// not given) passes the filter.
    #[napi(catch_unwind)]
    pub fn test(&self, series: Vec<FilterSeries>, process: Option<FilterProcess>) -> Vec<bool> {
        let given = process.as_ref().map(|p| Given {
            pid: p.pid.is_some(),
            host: p.host.is_some(),
            title: p.title.is_some(),
        });
        let process = process.map(|p| ProcessFields {
            role: match p.role {
                FilterRole::Master => Role::Master,
                FilterRole::Worker => Role::Worker,
                FilterRole::Thread => Role::Thread,
            },
            pid: p.pid.unwrap_or_default(),
            worker: p.worker,
            host: p.host.unwrap_or_default(),
            title: p.title.unwrap_or_default(),
        });
        series
            .into_iter()
            .map(|s| {
                let key = SeriesKey {
                    method: s.method.into(),
                    path: s.path.into(),
                    id: s.id.into(),
                };
                let fields = SeriesFields {
                    key: &key,
                    process: process.as_ref(),
                };
                match &given {
                    Some(given) => self.filter.matches(&Partial { fields, given }),
                    None => self.filter.matches(&fields),
                }
            })
            .collect()
    }
}

/// Which of a JS process object's optional fields were given.
struct Given {
    pid: bool,
    host: bool,
    title: bool,
}

/// A series whose process lacks some fields: those are missing to the filter (the rest is read
/// by the core's `SeriesFields`).
struct Partial<'a> {
    fields: SeriesFields<'a>,
    given: &'a Given,
}

impl Fields for Partial<'_> {
    fn get(&self, field: &Field) -> Option<Cow<'_, str>> {
        let given = match field {
            Field::Pid => self.given.pid,
            Field::Host => self.given.host,
            Field::Title => self.given.title,
            _ => true,
        };
        given.then(|| self.fields.get(field)).flatten()
    }
}
