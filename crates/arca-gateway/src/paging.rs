//! Paging of the List operations, written once: the `Limit` rule, the two
//! kinds of `Marker` Arca hands out, and the `Truncated` / `NextMarker`
//! answer.
//!
//! - Lists in the order of a unique id (keys, grants, aliases) hand out the
//!   last id shown; the next page starts after it, so a page stays right
//!   while items come and go.
//! - Short lists in an order of their own (a key's versions, tags,
//!   rotations) hand out the index of the next item, as decimal text.

use serde_json::{json, Value};

use crate::error::ApiError;

/// The `Limit` of a List request: `default` when absent, otherwise between
/// 1 and `max` (AWS's ValidationException if not).
pub fn limit(given: Option<i64>, max: i64, default: i64) -> Result<usize, ApiError> {
    let l = given.unwrap_or(default);
    if !(1..=max).contains(&l) {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{l}' at 'limit' failed to satisfy constraint: \
             Member must have value between 1 and {max}"
        )));
    }
    Ok(l as usize)
}

/// A `Marker` Arca did not hand out.
pub fn invalid_marker() -> ApiError {
    ApiError::new(400, "InvalidMarkerException", "The Marker is not valid")
}

/// The page of `all` an index marker names, and the marker of the next page
/// if more follow. A marker is the text of an index Arca handed out (never
/// 0); one past the end (the list shrank since) gives an empty last page.
pub fn by_index<'a, T>(
    all: &'a [T],
    marker: Option<&str>,
    limit: usize,
) -> Result<(&'a [T], Option<String>), ApiError> {
    let from = match marker {
        None => 0,
        Some(m) => match m.parse::<usize>() {
            Ok(n) if n > 0 && n.to_string() == m => n,
            _ => return Err(invalid_marker()),
        },
    };
    let rest = &all[from.min(all.len())..];
    let page = &rest[..rest.len().min(limit)];
    let next = (page.len() < rest.len()).then(|| (from + page.len()).to_string());
    Ok((page, next))
}

/// The page of `sorted` (in the order of `id`) after the id `marker`, and
/// the marker of the next page if more follow.
pub fn after_id<'a, T>(
    sorted: &'a [T],
    marker: Option<&str>,
    limit: usize,
    id: impl Fn(&T) -> &str,
) -> (&'a [T], Option<String>) {
    let from = marker.map_or(0, |m| sorted.partition_point(|t| id(t) <= m));
    let rest = &sorted[from..];
    let page = &rest[..rest.len().min(limit)];
    let next = match (page.len() < rest.len(), page.last()) {
        (true, Some(last)) => Some(id(last).to_string()),
        _ => None,
    };
    (page, next)
}

/// The marker of the next page of a list paged by id: the last id shown,
/// if more follow.
pub fn next_id(truncated: bool, last: Option<String>) -> Option<String> {
    last.filter(|_| truncated)
}

/// A List answer: `body` (an object holding the page) with `Truncated` and,
/// when more follow, `NextMarker`.
pub fn answer(mut body: Value, next: Option<String>) -> Value {
    body["Truncated"] = json!(next.is_some());
    if let Some(m) = next {
        body["NextMarker"] = json!(m);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_markers_walk_the_list_and_refuse_what_was_never_handed_out() {
        let all: Vec<u32> = (0..5).collect();
        let (p, next) = by_index(&all, None, 2).unwrap();
        assert_eq!((p, next.as_deref()), (&[0, 1][..], Some("2")));
        let (p, next) = by_index(&all, Some("2"), 2).unwrap();
        assert_eq!((p, next.as_deref()), (&[2, 3][..], Some("4")));
        let (p, next) = by_index(&all, Some("4"), 2).unwrap();
        assert_eq!((p, next), (&[4][..], None));
        // The list shrank since the marker was handed out.
        assert_eq!(by_index(&all, Some("9"), 2).unwrap(), (&[][..], None));
        for bad in ["0", "-1", "+2", "02", "two", ""] {
            let e = by_index(&all, Some(bad), 2).unwrap_err();
            assert_eq!(e.code, "InvalidMarkerException", "{bad}");
        }
    }

    #[test]
    fn id_markers_start_after_the_last_id_shown() {
        let all = ["a", "c", "e", "g"];
        let (p, next) = after_id(&all, None, 2, |s| s);
        assert_eq!((p, next.as_deref()), (&["a", "c"][..], Some("c")));
        // An item removed meanwhile does not shift the next page.
        let fewer = ["a", "e", "g"];
        let (p, next) = after_id(&fewer, Some("c"), 2, |s| s);
        assert_eq!((p, next), (&["e", "g"][..], None));
    }

    #[test]
    fn limits_are_checked_against_the_operations_bounds() {
        assert_eq!(limit(None, 100, 50).unwrap(), 50);
        assert_eq!(limit(Some(100), 100, 50).unwrap(), 100);
        for bad in [0, 101, -3] {
            let e = limit(Some(bad), 100, 50).unwrap_err();
            assert_eq!(e.code, "ValidationException");
            assert!(e.message.contains("between 1 and 100"), "{}", e.message);
        }
    }

    #[test]
    fn answers_say_whether_more_follow() {
        let a = answer(json!({ "Keys": [] }), Some("k".into()));
        assert_eq!(a["Truncated"], true);
        assert_eq!(a["NextMarker"], "k");
        let a = answer(json!({ "Keys": [] }), None);
        assert_eq!(a["Truncated"], false);
        assert!(a.get("NextMarker").is_none());
    }
}
