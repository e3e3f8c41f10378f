//! Serde helpers shared by the wire types: base64 bodies and lenient defaults.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serializer};

/// Deserializes `null` (or a missing field, with `#[serde(default)]`) as `T::default()`.
pub(crate) fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// An HTTP method as authors compare it (`"GET"`): GitBook's `fetch` events spell it in
/// lower case (`"get"`), so it is upper-cased on the way in; `null` is empty.
pub(crate) fn method<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default().to_ascii_uppercase())
}

/// Whether JSON text holds an object, judged by its first byte. Checked before decoding
/// into a derived struct, which would also accept an array.
pub(crate) fn is_object(json: &[u8]) -> bool {
    json.trim_ascii_start().first() == Some(&b'{')
}

/// Encodes bytes as standard base64.
pub(crate) fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard base64, tolerating missing padding.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    match STANDARD.decode(text) {
        Ok(bytes) => Ok(bytes),
        Err(err) => {
            let trimmed = text.trim_end_matches('=');
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed).map_err(|_| err)
        }
    }
}

/// `#[serde(with = "crate::codec::base64_body")]`: bytes as a base64 string; `null` or
/// a missing field (with `#[serde(default)]`) is an empty body.
pub(crate) mod base64_body {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(Vec::new()),
            Some(text) => decode(&text).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_objects_are_objects() {
        assert!(is_object(b" \n{\"a\":1}"));
        assert!(!is_object(b"[]"));
        assert!(!is_object(b""));
        assert!(!is_object(b"null"));
    }

    #[test]
    fn decode_accepts_padded_and_unpadded_base64() {
        assert_eq!(decode("aGk=").unwrap(), b"hi");
        assert_eq!(decode("aGk").unwrap(), b"hi");
        assert_eq!(decode("").unwrap(), b"");
        assert!(decode("!!").is_err());
    }
}
