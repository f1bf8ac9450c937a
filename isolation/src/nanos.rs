//! Durations in JSON as integer nanoseconds (fields named `…_ns`), so a
//! reader needs no knowledge of Rust's `{secs, nanos}` layout.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Serializes `d` as whole nanoseconds (saturating at `u64::MAX`, 584 years).
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Reads whole nanoseconds.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_nanos)
}

/// The same for an optional duration (`null` when absent).
pub mod option {
    use super::*;

    /// Serializes `Some(d)` as whole nanoseconds, `None` as `null`.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    /// Reads whole nanoseconds or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|n| n.map(Duration::from_nanos))
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use std::time::Duration;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct T {
        #[serde(with = "super")]
        a: Duration,
        #[serde(with = "super::option", default)]
        b: Option<Duration>,
    }

    #[test]
    fn durations_round_trip_as_integer_nanoseconds() {
        let t = T {
            a: Duration::new(1, 5),
            b: None,
        };
        let j = serde_json::to_string(&t).unwrap();
        assert_eq!(j, r#"{"a":1000000005,"b":null}"#);
        assert_eq!(serde_json::from_str::<T>(&j).unwrap(), t);
        let t: T = serde_json::from_str(r#"{"a":7,"b":3}"#).unwrap();
        assert_eq!(t.b, Some(Duration::from_nanos(3)));
        assert!(serde_json::from_str::<T>(r#"{"a":{"secs":1,"nanos":0}}"#).is_err());
    }
}
