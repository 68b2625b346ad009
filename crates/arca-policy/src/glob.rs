//! `*` / `?` wildcard matching, and ARN matching segment by segment.
//!
//! The matcher is iterative (one remembered `*`), so its cost is at most
//! `pattern length × text length` and it never recurses.

/// One element of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// This exact character.
    Lit(char),
    /// Any run of characters, including none.
    Star,
    /// Exactly one character.
    One,
    /// The boundary between two ARN segments (a `:` of the pattern itself).
    Sep,
}

/// Compiles `s`, reading `*` and `?` as wildcards and every other character literally.
pub(crate) fn compile(s: &str) -> Vec<Tok> {
    s.chars().map(wild).collect()
}

/// The token for one character of pattern text.
pub(crate) fn wild(c: char) -> Tok {
    match c {
        '*' => Tok::Star,
        '?' => Tok::One,
        c => Tok::Lit(c),
    }
}

/// Does `pattern` match all of `text`? Case-sensitive; `Sep` matches a literal `:`.
pub(crate) fn matches(pattern: &[Tok], text: &str) -> bool {
    matches_by(pattern, text, |c| c)
}

/// [`matches`] with each character of `text` read through `fold` first
/// (a pattern compiled in lower case matches without a lower-cased copy).
/// Positions in `text` are byte offsets: nothing is copied or allocated.
pub(crate) fn matches_by(pattern: &[Tok], text: &str, fold: impl Fn(char) -> char) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // Position of the last `*` seen in the pattern, and the text position it resumes at.
    let mut star: Option<(usize, usize)> = None;
    while let Some(c) = text[t..].chars().next() {
        let width = c.len_utf8();
        let c = fold(c);
        match pattern.get(p) {
            Some(Tok::Star) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Tok::One) => {
                p += 1;
                t += width;
            }
            Some(Tok::Lit(l)) if *l == c => {
                p += 1;
                t += width;
            }
            Some(Tok::Sep) if c == ':' => {
                p += 1;
                t += width;
            }
            _ => match star {
                Some((sp, st)) => {
                    // `st` is before `t`, so a character starts there.
                    let next = st + text[st..].chars().next().map_or(1, char::len_utf8);
                    star = Some((sp, next));
                    p = sp + 1;
                    t = next;
                }
                None => return false,
            },
        }
    }
    pattern.iter().skip(p).all(|tok| *tok == Tok::Star)
}

/// Number of segments of an ARN: `arn:partition:service:region:account:resource`.
pub(crate) const ARN_SEGMENTS: usize = 6;

/// Matches an ARN pattern whose segments are separated by [`Tok::Sep`] against an ARN,
/// segment by segment, so a wildcard never spans a `:` between the first six segments.
/// The resource segment (the sixth) may itself contain `:`.
///
/// A value that does not have six segments never matches.
pub(crate) fn matches_arn(pattern: &[Tok], value: &str) -> bool {
    let values: Vec<&str> = value.splitn(ARN_SEGMENTS, ':').collect();
    let patterns: Vec<&[Tok]> = pattern.split(|t| *t == Tok::Sep).collect();
    values.len() == ARN_SEGMENTS
        && patterns.len() == ARN_SEGMENTS
        && patterns.iter().zip(&values).all(|(p, v)| matches(p, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        matches(&compile(p), t)
    }

    #[test]
    fn literal_and_wildcards() {
        assert!(m("abc", "abc"));
        assert!(!m("abc", "abd"));
        assert!(!m("abc", "ab"));
        assert!(!m("ab", "abc"));
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("a*", "a"));
        assert!(m("a*c", "abbbc"));
        assert!(!m("a*c", "abbbd"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("*b*", "abc"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(!m("a*b*c", "aXcYb"));
        assert!(m("**", "x"));
        assert!(!m("?", ""));
    }

    #[test]
    fn is_case_sensitive_and_unicode_aware() {
        assert!(!m("ABC", "abc"));
        assert!(m("?", "é"));
        assert!(m("d?pt", "dépt"));
    }

    #[test]
    fn pathological_pattern_is_fast() {
        let pattern = "*a".repeat(200) + "b";
        let text = "a".repeat(5000);
        assert!(!m(&pattern, &text));
    }

    fn arn_pattern(s: &str) -> Vec<Tok> {
        let mut out = Vec::new();
        let mut seps = 0;
        for c in s.chars() {
            if c == ':' && seps < ARN_SEGMENTS - 1 {
                seps += 1;
                out.push(Tok::Sep);
            } else {
                out.push(wild(c));
            }
        }
        out
    }

    #[test]
    fn arn_wildcards_stay_inside_their_segment() {
        let p = arn_pattern("arn:aws:kms:*:111122223333:key/*");
        assert!(matches_arn(
            &p,
            "arn:aws:kms:us-east-1:111122223333:key/abc"
        ));
        assert!(!matches_arn(
            &p,
            "arn:aws:kms:us-east-1:999999999999:key/abc"
        ));
        // `*` in the region segment cannot swallow the account segment.
        let p = arn_pattern("arn:aws:kms:*:key/*");
        assert!(!matches_arn(
            &p,
            "arn:aws:kms:us-east-1:111122223333:key/abc"
        ));
        // The resource segment may contain colons.
        let p = arn_pattern("arn:aws:iam::111122223333:*");
        assert!(matches_arn(&p, "arn:aws:iam::111122223333:a:b:c"));
        // Not an ARN at all.
        assert!(!matches_arn(&arn_pattern("arn:*:*:*:*:*"), "*"));
    }
}
