//! AWS KMS's limits and state rules, in one place.

use std::collections::BTreeMap;

use crate::{KeyRecord, KeyState, Origin, Rejection};

pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;
pub const MIN_PENDING_WINDOW_DAYS: u32 = 7;
pub const MAX_PENDING_WINDOW_DAYS: u32 = 30;
pub const DEFAULT_PENDING_WINDOW_DAYS: u32 = 30;
pub const MIN_ROTATION_DAYS: u32 = 90;
pub const MAX_ROTATION_DAYS: u32 = 2560;
pub const DEFAULT_ROTATION_DAYS: u32 = 365;
pub const MAX_ON_DEMAND_ROTATIONS: usize = 25;
/// Versions an asymmetric key may have (CreateKeyVersion).
pub const MAX_KEY_VERSIONS: usize = 100;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_KEY_CHARS: usize = 128;
pub const MAX_TAG_VALUE_CHARS: usize = 256;
pub const MAX_ALIAS_NAME_CHARS: usize = 256;
pub const MAX_ALIASES: usize = 100_000;
pub const RESERVED_ALIAS_PREFIX: &str = "alias/aws/";
/// How far ahead imported material's `ValidTo` may be (AWS: 365 days).
pub const MAX_IMPORT_VALIDITY_DAYS: u64 = 365;
/// How long `GetParametersForImport`'s wrapping key and token stay valid.
pub const IMPORT_PARAMETERS_VALID_MS: u64 = DAY_MS;
/// How long after its grant's creation (the leader's stamp) a grant token
/// is honored on its own by a node that does not know the grant — one that
/// has not applied its creation yet. A grant token exists for that moment;
/// a node that knows the grant honors it by its row, however old the token.
pub const GRANT_TOKEN_ALONE_MS: u64 = 60 * 60 * 1000;
/// How long a retired or revoked grant is remembered (its row kept as
/// removed, so that its token is refused): past the time its token could be
/// honored on its own, plus as much again for a checking node's clock
/// running behind the leader's. Then the row is forgotten, and the token is
/// refused as too old to stand alone.
pub const REMOVED_GRANT_KEPT_MS: u64 = 2 * GRANT_TOKEN_ALONE_MS;
/// Removed grants one `ForgetRemovedGrants` entry forgets at most, so that
/// one entry's apply and commit stay small however many are due (the
/// scheduler proposes again at its next tick while more are).
pub const MAX_GRANTS_FORGOTTEN_PER_ENTRY: usize = 10_000;

/// The earliest deletion date a command appended at `stamp_ms` may set: the
/// shortest pending window after the leader's stamp.
pub fn earliest_deletion(stamp_ms: u64) -> u64 {
    stamp_ms.saturating_add(u64::from(MIN_PENDING_WINDOW_DAYS) * DAY_MS)
}

pub(crate) fn deletion_too_soon(deletion_ms: u64, stamp_ms: u64) -> Rejection {
    Rejection::Invalid(format!(
        "a deletion date ({deletion_ms} ms) less than {MIN_PENDING_WINDOW_DAYS} days after the entry's time ({stamp_ms} ms) is refused"
    ))
}

/// `alias/` followed by letters, digits, `/`, `_` and `-`; at most 256
/// characters; not in the reserved `alias/aws/` space.
pub fn check_alias_name(name: &str) -> Result<(), Rejection> {
    let rest = name.strip_prefix("alias/").ok_or_else(|| {
        Rejection::InvalidAliasName(format!(
            "Alias must start with the prefix \"alias/\": {name}"
        ))
    })?;
    if rest.is_empty()
        || name.chars().count() > MAX_ALIAS_NAME_CHARS
        || !rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-'))
    {
        return Err(Rejection::InvalidAliasName(format!(
            "Alias {name} must match ^alias/[a-zA-Z0-9/_-]+$ and have at most {MAX_ALIAS_NAME_CHARS} characters"
        )));
    }
    if name.starts_with(RESERVED_ALIAS_PREFIX) {
        return Err(Rejection::InvalidAliasName(format!(
            "Alias names starting with {RESERVED_ALIAS_PREFIX} are reserved"
        )));
    }
    Ok(())
}

/// AWS's tag rules, content first, then count: keys 1–128 characters, values
/// 0–256, the `aws:` prefix reserved; at most 50 tags.
pub fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), Rejection> {
    for (k, v) in tags {
        let n = k.chars().count();
        if n == 0 || n > MAX_TAG_KEY_CHARS {
            return Err(Rejection::InvalidTag(format!(
                "tag keys must have 1 to {MAX_TAG_KEY_CHARS} characters"
            )));
        }
        if v.chars().count() > MAX_TAG_VALUE_CHARS {
            return Err(Rejection::InvalidTag(format!(
                "tag values must have at most {MAX_TAG_VALUE_CHARS} characters"
            )));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(Rejection::InvalidTag(
                "tag keys starting with aws: are reserved".into(),
            ));
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(Rejection::LimitExceeded(format!(
            "a key can have at most {MAX_TAGS} tags ({} requested)",
            tags.len()
        )));
    }
    Ok(())
}

pub fn require_not_pending_deletion(k: &KeyRecord) -> Result<(), Rejection> {
    if k.state == KeyState::PendingDeletion {
        return Err(Rejection::InvalidState(format!(
            "{} is pending deletion.",
            arn_free(k)
        )));
    }
    Ok(())
}

pub fn require_not_pending_import(k: &KeyRecord) -> Result<(), Rejection> {
    if k.state == KeyState::PendingImport {
        return Err(Rejection::InvalidState(format!(
            "{} is pending import.",
            arn_free(k)
        )));
    }
    Ok(())
}

/// Import operations need a key of origin EXTERNAL.
pub fn require_external(k: &KeyRecord) -> Result<(), Rejection> {
    if k.origin != Origin::External {
        return Err(Rejection::Unsupported(format!(
            "{} has origin {}; key material can be imported only into keys of origin EXTERNAL",
            arn_free(k),
            k.origin.as_aws()
        )));
    }
    Ok(())
}

/// An imported material's `ValidTo`: after `stamp_ms`, at most
/// [`MAX_IMPORT_VALIDITY_DAYS`] after it.
pub fn check_import_valid_to(valid_to_ms: u64, stamp_ms: u64) -> Result<(), Rejection> {
    let latest = stamp_ms.saturating_add(MAX_IMPORT_VALIDITY_DAYS * DAY_MS);
    if valid_to_ms <= stamp_ms || valid_to_ms > latest {
        return Err(Rejection::Invalid(format!(
            "ValidTo must be in the future and at most {MAX_IMPORT_VALIDITY_DAYS} days from now"
        )));
    }
    Ok(())
}

/// Rotation changes need a symmetric key that is enabled.
pub fn require_usable_for_rotation(k: &KeyRecord) -> Result<(), Rejection> {
    if k.origin == Origin::External {
        return Err(Rejection::Unsupported(format!(
            "{} has imported key material; it does not rotate",
            arn_free(k)
        )));
    }
    if !k.spec.rotatable() {
        return Err(Rejection::Unsupported(format!(
            "{} has key spec {}; only symmetric encryption keys rotate",
            arn_free(k),
            k.spec.as_aws()
        )));
    }
    match k.state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(Rejection::Disabled(format!("{} is disabled.", arn_free(k)))),
        KeyState::PendingDeletion => require_not_pending_deletion(k),
        KeyState::PendingImport => require_not_pending_import(k),
    }
}

fn arn_free(k: &KeyRecord) -> String {
    format!("Key '{}'", k.key_id)
}

/// A user name as IAM allows it: 1–64 of letters, digits and `+=,.@_-`.
pub fn check_user_name(name: &str) -> Result<(), Rejection> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Rejection::Invalid(format!(
            "invalid user name '{}': use 1 to 64 letters, digits and +=,.@_-",
            name.chars().take(64).collect::<String>()
        )))
    }
}
