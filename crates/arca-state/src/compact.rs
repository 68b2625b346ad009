//! Maps built whole rather than entry by entry.
//!
//! `BTreeMap` splits a full node where the new entry goes: filled in key
//! order — as decoding a snapshot or loading the state machine's tables
//! does — every node it leaves behind is a little over half full, and
//! filled in random order (as writes arrive) about two thirds. Built from
//! all its entries at once (`collect`), every node but the last on each
//! level is full. For a state of a million keys, whose records are a few
//! hundred bytes each, that is a few hundred megabytes.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// Deserializes a map (`#[serde(deserialize_with = "compact::map")]`) into
/// a `BTreeMap` built whole: the entries are read into a vector first, then
/// the map is built from it (a later duplicate key wins, as with inserts).
pub fn map<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    struct Entries<K, V>(PhantomData<(K, V)>);

    impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> Visitor<'de> for Entries<K, V> {
        type Value = BTreeMap<K, V>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            // The hint comes from the input: trust it only so far.
            let mut entries = Vec::with_capacity(access.size_hint().unwrap_or(0).min(4096));
            while let Some(entry) = access.next_entry()? {
                entries.push(entry);
            }
            Ok(entries.into_iter().collect())
        }
    }

    d.deserialize_map(Entries(PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Holder {
        #[serde(deserialize_with = "map")]
        m: BTreeMap<u32, String>,
    }

    /// The encoding is a plain map's; decoding gives the same map.
    #[test]
    fn a_map_built_whole_decodes_to_the_same_map() {
        let h = Holder {
            m: (0..1000u32)
                .rev()
                .map(|i| (i * 7 % 1000, i.to_string()))
                .collect(),
        };
        let bytes = postcard::to_allocvec(&h).unwrap();
        let plain: BTreeMap<u32, String> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(plain, h.m);
        let back: Holder = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, h);
        assert!(postcard::from_bytes::<Holder>(&bytes[..bytes.len() - 1]).is_err());
    }
}
