//! Decoding the environment's open objects (the integration and the installations): the
//! fields the SDK models, and every other field kept in an `extra` map.
//!
//! Serde's `#[serde(flatten)]` does the same by buffering the whole object before
//! decoding it, which every event paid for; this reads each field once.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserializer;
use serde::de::{Error as _, MapAccess, Visitor};
use serde_json::{Map, Value};

/// An object with modelled fields and an `extra` map for the rest.
pub(super) trait OpenObject: Default {
    /// What the object is, for error messages (e.g. "an installation object").
    const EXPECTING: &'static str;
    /// The modelled fields' names (at most 32).
    const FIELDS: &'static [&'static str];
    /// Decodes the modelled field `name` (one of [`Self::FIELDS`]) from the next value.
    fn decode<'de, A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error>;
    /// Where the fields not in [`Self::FIELDS`] go.
    fn extra(&mut self) -> &mut Map<String, Value>;
}

/// Deserializes a `T` from a JSON object; a modelled field given twice is an error, as it
/// is for derived structs.
pub(super) fn deserialize<'de, T: OpenObject, D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
    deserializer.deserialize_map(OpenObjectVisitor(PhantomData))
}

struct OpenObjectVisitor<T>(PhantomData<T>);

impl<'de, T: OpenObject> Visitor<'de> for OpenObjectVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut object = T::default();
        // Bit `i` is set once `FIELDS[i]` has been read: no allocation per object.
        let mut seen = 0u32;
        while let Some(key) = map.next_key::<String>()? {
            match T::FIELDS.iter().position(|field| *field == key) {
                Some(index) => {
                    let bit = 1 << index;
                    if seen & bit != 0 {
                        return Err(A::Error::duplicate_field(T::FIELDS[index]));
                    }
                    seen |= bit;
                    object.decode(T::FIELDS[index], &mut map)?;
                }
                None => {
                    let value = map.next_value()?;
                    object.extra().insert(key, value);
                }
            }
        }
        Ok(object)
    }
}
