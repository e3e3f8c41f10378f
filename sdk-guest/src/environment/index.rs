//! Where the environment's top-level fields lie in its JSON text: one pass that checks the
//! syntax and skips every value without decoding or allocating, so that a field is decoded
//! from its own slice only when it is read.

use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The top-level fields the SDK reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    ApiEndpoint,
    ApiTokens,
    Integration,
    Installation,
    SpaceInstallation,
    SiteInstallation,
    Secrets,
}

impl Field {
    const ALL: [Field; 7] = [
        Field::ApiEndpoint,
        Field::ApiTokens,
        Field::Integration,
        Field::Installation,
        Field::SpaceInstallation,
        Field::SiteInstallation,
        Field::Secrets,
    ];

    /// The field's name in the host's JSON.
    pub(super) fn name(self) -> &'static str {
        match self {
            Field::ApiEndpoint => "apiEndpoint",
            Field::ApiTokens => "apiTokens",
            Field::Integration => "integration",
            Field::Installation => "installation",
            Field::SpaceInstallation => "spaceInstallation",
            Field::SiteInstallation => "siteInstallation",
            Field::Secrets => "secrets",
        }
    }
}

/// The byte range of each known field's value; other fields are skipped.
#[derive(Debug, Clone, Default)]
pub(super) struct Index {
    values: [Option<Range<usize>>; Field::ALL.len()],
}

impl Index {
    /// Indexes `json`, which must be one JSON object (or empty: no fields). A syntax error,
    /// anything but an object, or a known field given twice is an error.
    pub(super) fn of(json: &str) -> Result<Self, serde_json::Error> {
        if json.trim_ascii().is_empty() {
            return Ok(Self::default());
        }
        let mut deserializer = serde_json::Deserializer::from_str(json);
        let index = deserializer.deserialize_map(IndexVisitor { base: json.as_ptr() as usize })?;
        deserializer.end()?;
        Ok(index)
    }

    /// The JSON text of `field`'s value in `json` (the text this index was made of).
    pub(super) fn get<'a>(&self, json: &'a str, field: Field) -> Option<&'a str> {
        json.get(self.values[field as usize].clone()?)
    }
}

struct IndexVisitor {
    /// Where the indexed text starts in memory: values borrowed from it are located by
    /// their address.
    base: usize,
}

impl<'de> Visitor<'de> for IndexVisitor {
    type Value = Index;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an environment object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Index, A::Error> {
        let mut index = Index::default();
        while let Some(field) = map.next_key_seed(FieldSeed)? {
            let Some(field) = field else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let value: &RawValue = map.next_value()?;
            let slot = &mut index.values[field as usize];
            if slot.is_some() {
                return Err(de::Error::duplicate_field(field.name()));
            }
            let start = value.get().as_ptr() as usize - self.base;
            *slot = Some(start..start + value.get().len());
        }
        Ok(index)
    }
}

/// A key: one of the known fields, or `None` for any other.
struct FieldSeed;

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = Option<Field>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed {
    type Value = Option<Field>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(Field::ALL.into_iter().find(|field| field.name() == name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_located_and_others_skipped() {
        let json = r#" {"other":{"a":[1,"}"]},"installation" : {"id":"i"},"secrets":null,"apiEndpoint":"x\"y"} "#;
        let index = Index::of(json).unwrap();
        assert_eq!(index.get(json, Field::Installation), Some(r#"{"id":"i"}"#));
        assert_eq!(index.get(json, Field::Secrets), Some("null"));
        assert_eq!(index.get(json, Field::ApiEndpoint), Some(r#""x\"y""#));
        assert_eq!(index.get(json, Field::Integration), None);
        assert!(Index::of("").unwrap().get("", Field::Secrets).is_none());
    }

    #[test]
    fn malformed_text_and_duplicate_fields_are_refused() {
        for json in [r#"{"secrets":{}"#, "[]", r#"{"secrets":{},"secrets":{}}"#, r#"{"a":1} {}"#, "nul"] {
            assert!(Index::of(json).is_err(), "{json}");
        }
    }
}
