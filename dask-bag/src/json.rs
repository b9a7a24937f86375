//! JSON records: [`Bag::parse_json`] and `pluck`.

use std::fmt;

use serde_json::Value as Json;

use crate::bag::Bag;
use crate::{Error, Result};

/// What [`Bag::pluck`] takes out of each record: an object's key or an array's index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    /// A key of a JSON object.
    Key(String),
    /// An index into a JSON array.
    Index(usize),
}

impl From<&str> for Field {
    fn from(k: &str) -> Field {
        Field::Key(k.to_owned())
    }
}

impl From<String> for Field {
    fn from(k: String) -> Field {
        Field::Key(k)
    }
}

impl From<usize> for Field {
    fn from(i: usize) -> Field {
        Field::Index(i)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Key(k) => write!(f, "{k:?}"),
            Field::Index(i) => write!(f, "[{i}]"),
        }
    }
}

fn describe(v: &Json) -> String {
    match v {
        Json::Null => "null".into(),
        Json::Bool(_) => "a boolean".into(),
        Json::Number(_) => "a number".into(),
        Json::String(_) => "a string".into(),
        Json::Array(a) => format!("an array of {} items", a.len()),
        Json::Object(o) => format!("an object with {} keys", o.len()),
    }
}

fn pluck_one(field: &Field, part: usize, record: usize, mut v: Json) -> Result<Json> {
    let found = match (field, &mut v) {
        (Field::Key(k), Json::Object(o)) => o.remove(k),
        (Field::Index(i), Json::Array(a)) if *i < a.len() => Some(a.swap_remove(*i)),
        _ => None,
    };
    found.ok_or_else(|| Error::MissingField {
        partition: part,
        record,
        field: field.to_string(),
        found: describe(&v),
    })
}

impl Bag<Json> {
    /// The value of `field` (an object key, `"name"`, or an array index, `2usize`)
    /// in every record. A record without it fails its partition's task with
    /// [`Error::MissingField`] naming the partition and the record's position.
    pub fn pluck(&self, field: impl Into<Field>) -> Bag<Json> {
        let field = field.into();
        self.try_map_indexed("pluck", move |part, i, v| pluck_one(&field, part, i, v))
    }
}

impl Bag<String> {
    /// Parses every item as JSON. An invalid record fails its partition's task
    /// with [`Error::Json`] naming the partition and the record's position.
    pub fn parse_json(&self) -> Bag<Json> {
        self.try_map_indexed("parse_json", |part, record, s: String| {
            serde_json::from_str(&s).map_err(|source| Error::Json {
                partition: part,
                record,
                source,
            })
        })
    }

    /// [`Bag::parse_json`] then pluck `field` from each record, in one step
    /// (`read_text("*.jsonl", None)?.pluck("name")`).
    pub fn pluck(&self, field: impl Into<Field>) -> Bag<Json> {
        let field = field.into();
        self.try_map_indexed("pluck", move |part, record, s: String| {
            let v = serde_json::from_str(&s).map_err(|source| Error::Json {
                partition: part,
                record,
                source,
            })?;
            pluck_one(&field, part, record, v)
        })
    }
}
