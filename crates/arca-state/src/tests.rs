use super::*;
use crate::rules::DAY_MS;

fn init() -> Command {
    Command::InitCluster {
        info: ClusterInfo {
            region: "us-east-1".into(),
            account_id: "111122223333".into(),
            root_check_value: [1; 16],
            created_ms: 5,
        },
        admin: AccessKeyRecord {
            access_key_id: "AKIAADMIN".into(),
            wrapped_secret: vec![1, 2, 3],
            user: BOOTSTRAP_ADMIN_USER.into(),
            created_ms: 5,
        },
    }
}

fn id(n: u8) -> KeyId {
    KeyId::from_bytes([n; 16])
}

fn key(n: u8) -> KeyRecord {
    KeyRecord::new(
        id(n),
        String::new(),
        KeyUsage::EncryptDecrypt,
        KeySpec::SymmetricDefault,
        KeyVersion {
            version: 1,
            version_id: "v1".into(),
            public_key: None,
            wrapped: vec![9; 8],
            created_ms: 10,
        },
    )
}

fn p(command: Command) -> Proposal {
    Proposal::new(None, command)
}

fn req(id: u8, fingerprint: u8) -> Option<RequestKey> {
    Some(RequestKey {
        id: [id; 16],
        fingerprint: [fingerprint; 16],
    })
}

fn stamped(request: Option<RequestKey>, stamp_ms: u64, command: Command) -> Proposal {
    Proposal {
        request,
        stamp_ms,
        command,
    }
}

/// A state with the cluster initialized and keys 1 and 2.
fn state() -> State {
    let mut s = State::default();
    assert_eq!(s.apply(1, p(init())).0, Outcome::Applied);
    for n in [1, 2] {
        assert_eq!(
            s.apply(2, p(Command::CreateKey { key: key(n) })).0,
            Outcome::Applied
        );
    }
    s
}

fn rejected(s: &mut State, cmd: Command) -> Rejection {
    let before = s.clone();
    match s.apply(100, p(cmd)) {
        (Outcome::Rejected(r), t) => {
            assert!(t.is_empty());
            assert_eq!(*s, before, "a rejected command changes nothing");
            r
        }
        (o, _) => panic!("expected a rejection, got {o:?}"),
    }
}

#[test]
fn create_key_needs_init_and_is_unique() {
    let mut s = State::default();
    assert_eq!(
        rejected(&mut s, Command::CreateKey { key: key(1) }),
        Rejection::NotInitialized
    );
    let mut s = state();
    assert_eq!(s.keys[&id(1)].revision, 2);
    assert!(matches!(
        rejected(&mut s, Command::CreateKey { key: key(1) }),
        Rejection::AlreadyExists(_)
    ));
    assert_eq!(rejected(&mut s, init()), Rejection::AlreadyInitialized);
    let mut k = key(3);
    k.versions.clear();
    assert!(matches!(
        rejected(&mut s, Command::CreateKey { key: k }),
        Rejection::Invalid(_)
    ));
}

#[test]
fn enable_disable_and_description() {
    let mut s = state();
    let (o, t) = s.apply(
        5,
        p(Command::SetKeyEnabled {
            key_id: id(1),
            enabled: false,
        }),
    );
    assert_eq!(o, Outcome::Applied);
    assert_eq!(t, vec![Touched::Key(id(1))]);
    assert_eq!(s.keys[&id(1)].state, KeyState::Disabled);
    assert_eq!(s.keys[&id(1)].revision, 5);
    s.apply(
        6,
        p(Command::SetKeyEnabled {
            key_id: id(1),
            enabled: true,
        }),
    );
    assert_eq!(s.keys[&id(1)].state, KeyState::Enabled);
    s.apply(
        7,
        p(Command::UpdateDescription {
            key_id: id(1),
            description: "new".into(),
        }),
    );
    assert_eq!(s.keys[&id(1)].description, "new");
    assert!(matches!(
        rejected(
            &mut s,
            Command::SetKeyEnabled {
                key_id: id(9),
                enabled: true
            }
        ),
        Rejection::NotFound(_)
    ));
}

#[test]
fn deletion_schedule_cancel_and_execute() {
    let mut s = state();
    let sched = Command::ScheduleKeyDeletion {
        key_id: id(1),
        window_days: 7,
    };
    let t0 = 1000;
    assert_eq!(
        s.apply(5, stamped(None, t0, sched.clone())).0,
        Outcome::Applied
    );
    assert_eq!(s.keys[&id(1)].state, KeyState::PendingDeletion);
    // The date is the leader's stamp plus the window.
    assert_eq!(s.keys[&id(1)].deletion_ms, Some(t0 + 7 * DAY_MS));
    assert!(matches!(
        rejected(&mut s, sched.clone()),
        Rejection::InvalidState(_)
    ));
    assert!(matches!(
        rejected(
            &mut s,
            Command::SetKeyEnabled {
                key_id: id(1),
                enabled: true
            }
        ),
        Rejection::InvalidState(_)
    ));
    // Cancel: back to Disabled, as AWS.
    assert_eq!(
        s.apply(6, p(Command::CancelDeletion { key_id: id(1) })).0,
        Outcome::Applied
    );
    assert_eq!(s.keys[&id(1)].state, KeyState::Disabled);
    assert_eq!(s.keys[&id(1)].deletion_ms, None);
    assert!(matches!(
        rejected(&mut s, Command::CancelDeletion { key_id: id(1) }),
        Rejection::InvalidState(_)
    ));
    // Window out of range.
    assert!(matches!(
        rejected(
            &mut s,
            Command::ScheduleKeyDeletion {
                key_id: id(1),
                window_days: 6
            }
        ),
        Rejection::Invalid(_)
    ));
    // Deletion only when due; removes the key and its aliases.
    s.apply(7, stamped(None, t0, sched));
    s.apply(
        8,
        p(Command::CreateAlias {
            name: "alias/doomed".into(),
            key_id: id(2),
            now_ms: 1,
        }),
    );
    s.apply(
        8,
        p(Command::UpdateAlias {
            name: "alias/doomed".into(),
            key_id: id(2),
            now_ms: 1,
        }),
    );
    let due = t0 + 7 * DAY_MS;
    assert_eq!(s.due_deletions(due - 1), vec![]);
    assert_eq!(s.due_deletions(due), vec![id(1)]);
    schedule_is_derived(&s);
    let purge = Command::PurgeKey { key_id: id(1) };
    let (o, _) = s.apply(9, stamped(None, due - 1, purge.clone()));
    assert!(
        matches!(o, Outcome::Rejected(Rejection::NotDue(_))),
        "{o:?}"
    );
    let (o, _) = s.apply(9, stamped(None, due, purge));
    assert_eq!(o, Outcome::Applied);
    assert!(!s.keys.contains_key(&id(1)));
    assert!(
        s.aliases.contains_key("alias/doomed"),
        "alias of another key stays"
    );
    assert!(s.due_deletions(u64::MAX).is_empty());
    schedule_is_derived(&s);
}

#[test]
fn no_proposer_chosen_time_shortens_a_deletion() {
    let mut s = state();
    let t0 = 50 * DAY_MS;
    // A forged legacy ScheduleDeletion with a date of 0 (or any date far
    // short of seven days after the leader's stamp) is refused.
    for deletion_ms in [0, t0, t0 + 6 * DAY_MS] {
        let (o, t) = s.apply(
            5,
            stamped(
                None,
                t0,
                Command::ScheduleDeletion {
                    key_id: id(1),
                    deletion_ms,
                    window_days: 7,
                },
            ),
        );
        assert!(
            matches!(o, Outcome::Rejected(Rejection::Invalid(_))),
            "{o:?}"
        );
        assert!(t.is_empty());
        assert_eq!(s.keys[&id(1)].state, KeyState::Enabled);
    }
    // A short window in the new command is refused too.
    let (o, _) = s.apply(
        5,
        stamped(
            None,
            t0,
            Command::ScheduleKeyDeletion {
                key_id: id(1),
                window_days: 1,
            },
        ),
    );
    assert!(
        matches!(o, Outcome::Rejected(Rejection::Invalid(_))),
        "{o:?}"
    );
    // A legacy entry an honest proposer made, its clock a little behind the
    // leader's, still applies (old logs replay as before).
    let honest = t0 - 2_000 + 7 * DAY_MS;
    let (o, _) = s.apply(
        6,
        stamped(
            None,
            t0,
            Command::ScheduleDeletion {
                key_id: id(1),
                deletion_ms: honest,
                window_days: 7,
            },
        ),
    );
    assert_eq!(o, Outcome::Applied);
    // A purge before the date, by the stamp, is refused, whatever time the
    // legacy command claims.
    for now_ms in [honest, u64::MAX] {
        let (o, _) = s.apply(
            7,
            stamped(
                None,
                t0 + DAY_MS,
                Command::DeleteKey {
                    key_id: id(1),
                    now_ms,
                },
            ),
        );
        assert!(
            matches!(o, Outcome::Rejected(Rejection::NotDue(_))),
            "{o:?}"
        );
    }
    let (o, _) = s.apply(
        7,
        stamped(None, honest - 1, Command::PurgeKey { key_id: id(1) }),
    );
    assert!(
        matches!(o, Outcome::Rejected(Rejection::NotDue(_))),
        "{o:?}"
    );
    assert!(s.keys.contains_key(&id(1)));
    let (o, _) = s.apply(
        8,
        stamped(None, honest, Command::PurgeKey { key_id: id(1) }),
    );
    assert_eq!(o, Outcome::Applied);
    assert!(!s.keys.contains_key(&id(1)));
}

#[test]
fn the_leader_stamps_every_time_a_command_carries() {
    let now = 123 * DAY_MS;
    let forged = Command::ScheduleKeyDeletion {
        key_id: id(1),
        window_days: 7,
    };
    assert_eq!(
        forged.stamped(now),
        Command::ScheduleKeyDeletion {
            key_id: id(1),
            window_days: 7
        }
    );
    assert_eq!(
        Command::DeleteKey {
            key_id: id(1),
            now_ms: u64::MAX
        }
        .stamped(now),
        Command::PurgeKey { key_id: id(1) }
    );
    let Command::CreateKey { key: k } = Command::CreateKey { key: key(1) }.stamped(now) else {
        panic!("not a CreateKey")
    };
    assert_eq!(k.created_ms, now);
    assert!(k.versions.iter().all(|v| v.created_ms == now));
    let Command::SetRotation {
        schedule: Some(r), ..
    } = Command::SetRotation {
        key_id: id(1),
        schedule: Some(RotationSchedule {
            period_days: 90,
            next_ms: 0,
        }),
    }
    .stamped(now)
    else {
        panic!("not a SetRotation")
    };
    assert_eq!(r.next_ms, now + 90 * DAY_MS);
    assert_eq!(
        Command::RotateKey {
            key_id: id(1),
            version: key(1).versions[0].clone(),
            on_demand: false,
            now_ms: u64::MAX,
        }
        .stamped(now),
        Command::RotateKey {
            key_id: id(1),
            version: KeyVersion {
                created_ms: now,
                ..key(1).versions[0].clone()
            },
            on_demand: false,
            now_ms: now,
        }
    );
    assert_eq!(
        Command::CreateAlias {
            name: "alias/a".into(),
            key_id: id(1),
            now_ms: 0
        }
        .stamped(now),
        Command::CreateAlias {
            name: "alias/a".into(),
            key_id: id(1),
            now_ms: now
        }
    );
}

#[test]
fn deleting_a_key_deletes_its_aliases() {
    let mut s = state();
    s.apply(
        3,
        p(Command::CreateAlias {
            name: "alias/a".into(),
            key_id: id(1),
            now_ms: 1,
        }),
    );
    s.apply(
        4,
        p(Command::ScheduleKeyDeletion {
            key_id: id(1),
            window_days: 7,
        }),
    );
    let (o, t) = s.apply(
        5,
        stamped(None, 8 * DAY_MS, Command::PurgeKey { key_id: id(1) }),
    );
    assert_eq!(o, Outcome::Applied);
    assert!(t.contains(&Touched::Alias("alias/a".into())));
    assert!(s.aliases.is_empty());
}

/// `UpdateAlias` and `DeleteAlias` need the right on the key the alias
/// points to; the entry carries the key that decision was made on, and an
/// alias that another request moved in between is left alone.
#[test]
fn an_alias_moves_or_goes_only_from_the_key_the_request_was_authorized_against() {
    let mut s = state();
    assert_eq!(
        s.apply(3, p(Command::CreateKey { key: key(3) })).0,
        Outcome::Applied
    );
    s.apply(
        4,
        p(Command::CreateAlias {
            name: "alias/app".into(),
            key_id: id(1),
            now_ms: 1,
        }),
    );
    let move_ = |from, to| Command::MoveAlias {
        name: "alias/app".into(),
        from: id(from),
        key_id: id(to),
        now_ms: 5,
    };
    // Authorized against key 1, and it still points there: moved.
    assert_eq!(s.apply(5, p(move_(1, 2))).0, Outcome::Applied);
    assert_eq!(s.aliases["alias/app"].key_id, id(2));
    assert_eq!(s.aliases["alias/app"].updated_ms, 5);
    assert_eq!(s.key_aliases(&id(2)).collect::<Vec<_>>(), ["alias/app"]);
    assert_eq!(s.key_aliases(&id(1)).count(), 0);
    // A request authorized against key 1 before that move may not move it
    // away from key 2, nor delete it.
    let r = rejected(&mut s, move_(1, 3));
    assert!(
        matches!(&r, Rejection::InvalidState(m) if m.contains("send the request again")),
        "{r:?}"
    );
    let delete_of = |k| Command::DeleteAliasOf {
        name: "alias/app".into(),
        key_id: id(k),
    };
    assert!(matches!(
        rejected(&mut s, delete_of(1)),
        Rejection::InvalidState(_)
    ));
    assert!(matches!(
        rejected(
            &mut s,
            Command::DeleteAliasOf {
                name: "alias/none".into(),
                key_id: id(1),
            }
        ),
        Rejection::NotFound(_)
    ));
    // Against the key it points to now: deleted.
    assert_eq!(s.apply(6, p(delete_of(2))).0, Outcome::Applied);
    assert!(s.aliases.is_empty());
    assert_eq!(s.key_aliases(&id(2)).count(), 0);
    // The audit and the logs name them as the API does.
    assert_eq!(move_(1, 2).name(), "UpdateAlias");
    assert_eq!(delete_of(1).name(), "DeleteAlias");
    assert_eq!(delete_of(2).key_id(), Some(id(2)));
}

#[test]
fn alias_rules() {
    let mut s = state();
    let create = |n: &str, k| Command::CreateAlias {
        name: n.into(),
        key_id: id(k),
        now_ms: 1,
    };
    assert_eq!(s.apply(3, p(create("alias/app", 1))).0, Outcome::Applied);
    assert!(matches!(
        rejected(&mut s, create("alias/app", 2)),
        Rejection::AlreadyExists(_)
    ));
    for bad in [
        "app",
        "alias/",
        "alias/has space",
        "alias/aws/reserved",
        "alias/ü",
    ] {
        assert!(
            matches!(
                rejected(&mut s, create(bad, 1)),
                Rejection::InvalidAliasName(_)
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        rejected(&mut s, create("alias/x", 9)),
        Rejection::NotFound(_)
    ));
    s.apply(
        4,
        p(Command::UpdateAlias {
            name: "alias/app".into(),
            key_id: id(2),
            now_ms: 2,
        }),
    );
    assert_eq!(s.aliases["alias/app"].key_id, id(2));
    assert_eq!(s.aliases["alias/app"].updated_ms, 2);
    assert!(matches!(
        rejected(
            &mut s,
            Command::UpdateAlias {
                name: "alias/none".into(),
                key_id: id(2),
                now_ms: 2
            }
        ),
        Rejection::NotFound(_)
    ));
    s.apply(
        5,
        p(Command::DeleteAlias {
            name: "alias/app".into(),
        }),
    );
    assert!(s.aliases.is_empty());
    assert!(matches!(
        rejected(
            &mut s,
            Command::DeleteAlias {
                name: "alias/app".into()
            }
        ),
        Rejection::NotFound(_)
    ));
}

#[test]
fn tag_limits() {
    let mut s = state();
    let tags: Vec<(String, String)> = (0..50).map(|i| (format!("k{i}"), "v".into())).collect();
    assert_eq!(
        s.apply(
            3,
            p(Command::TagKey {
                key_id: id(1),
                tags
            })
        )
        .0,
        Outcome::Applied
    );
    assert!(matches!(
        rejected(
            &mut s,
            Command::TagKey {
                key_id: id(1),
                tags: vec![("one-more".into(), "v".into())]
            }
        ),
        Rejection::LimitExceeded(_)
    ));
    // Overwriting an existing key is not a new tag.
    assert_eq!(
        s.apply(
            4,
            p(Command::TagKey {
                key_id: id(1),
                tags: vec![("k0".into(), "w".into())]
            })
        )
        .0,
        Outcome::Applied
    );
    assert_eq!(s.keys[&id(1)].tags["k0"], "w");
    for (k, v) in [
        ("", "v"),
        ("aws:x", "v"),
        (&"k".repeat(129)[..], "v"),
        ("ok", &"v".repeat(257)[..]),
    ] {
        assert!(matches!(
            rejected(
                &mut s,
                Command::TagKey {
                    key_id: id(2),
                    tags: vec![(k.into(), v.into())]
                }
            ),
            Rejection::InvalidTag(_)
        ));
    }
    s.apply(
        5,
        p(Command::UntagKey {
            key_id: id(1),
            tag_keys: vec!["k0".into(), "absent".into()],
        }),
    );
    assert_eq!(s.keys[&id(1)].tags.len(), 49);
}

fn v(n: u32) -> KeyVersion {
    KeyVersion {
        version: n,
        version_id: format!("v{n}").into(),
        public_key: None,
        wrapped: vec![n as u8; 8],
        created_ms: 100,
    }
}

#[test]
fn rotation_on_demand_and_automatic() {
    let mut s = state();
    let rotate = |ver, on_demand, now_ms| Command::RotateKey {
        key_id: id(1),
        version: v(ver),
        on_demand,
        now_ms,
    };
    assert_eq!(s.apply(3, p(rotate(2, true, 50))).0, Outcome::Applied);
    assert_eq!(s.keys[&id(1)].primary().version, 2);
    // The version must be the next one.
    assert!(matches!(
        rejected(&mut s, rotate(2, true, 60)),
        Rejection::Invalid(_)
    ));
    // Automatic: not enabled → not due.
    assert!(matches!(
        rejected(&mut s, rotate(3, false, 60)),
        Rejection::NotDue(_)
    ));
    let sched = RotationSchedule {
        period_days: 90,
        next_ms: 90 * DAY_MS,
    };
    s.apply(
        4,
        p(Command::SetRotation {
            key_id: id(1),
            schedule: Some(sched),
        }),
    );
    assert_eq!(s.due_rotations(90 * DAY_MS - 1), vec![]);
    assert_eq!(s.due_rotations(90 * DAY_MS), vec![id(1)]);
    schedule_is_derived(&s);
    assert_eq!(
        s.apply(5, p(rotate(3, false, 90 * DAY_MS))).0,
        Outcome::Applied
    );
    // The period restarts, so the same automatic rotation cannot happen twice.
    assert_eq!(s.keys[&id(1)].rotation.unwrap().next_ms, 180 * DAY_MS);
    assert_eq!(s.due_rotations(180 * DAY_MS - 1), vec![]);
    assert_eq!(s.due_rotations(180 * DAY_MS), vec![id(1)]);
    schedule_is_derived(&s);
    assert!(matches!(
        rejected(&mut s, rotate(4, false, 90 * DAY_MS)),
        Rejection::NotDue(_)
    ));
    // An on-demand rotation leaves the schedule exactly as it was.
    assert_eq!(
        s.apply(6, p(rotate(4, true, 100 * DAY_MS + 7))).0,
        Outcome::Applied
    );
    assert_eq!(s.keys[&id(1)].rotation.unwrap().next_ms, 180 * DAY_MS);
    let k = &s.keys[&id(1)];
    assert_eq!(k.versions.len(), 4);
    assert_eq!(k.rotations.len(), 3);
    assert!(k.rotations[0].on_demand && !k.rotations[1].on_demand && k.rotations[2].on_demand);
    // Period bounds; disabled keys.
    assert!(matches!(
        rejected(
            &mut s,
            Command::SetRotation {
                key_id: id(2),
                schedule: Some(RotationSchedule {
                    period_days: 89,
                    next_ms: 0
                })
            }
        ),
        Rejection::Invalid(_)
    ));
    s.apply(
        7,
        p(Command::SetKeyEnabled {
            key_id: id(2),
            enabled: false,
        }),
    );
    assert!(matches!(
        rejected(
            &mut s,
            Command::RotateKey {
                key_id: id(2),
                version: v(2),
                on_demand: true,
                now_ms: 1
            }
        ),
        Rejection::Disabled(_)
    ));
}

#[test]
fn on_demand_rotation_limit() {
    let mut s = state();
    for n in 0..rules::MAX_ON_DEMAND_ROTATIONS as u32 {
        let c = Command::RotateKey {
            key_id: id(1),
            version: v(n + 2),
            on_demand: true,
            now_ms: 1,
        };
        assert_eq!(s.apply(3, p(c)).0, Outcome::Applied);
    }
    let c = Command::RotateKey {
        key_id: id(1),
        version: v(rules::MAX_ON_DEMAND_ROTATIONS as u32 + 2),
        on_demand: true,
        now_ms: 1,
    };
    assert!(matches!(rejected(&mut s, c), Rejection::LimitExceeded(_)));
}

#[test]
fn a_request_applies_once() {
    let mut s = state();
    let rotate = stamped(
        req(7, 1),
        1_000,
        Command::RotateKey {
            key_id: id(1),
            version: v(2),
            on_demand: true,
            now_ms: 1,
        },
    );
    assert_eq!(s.apply(3, rotate.clone()).0, Outcome::Applied);
    let after_first = s.clone();
    // The same request again (an SDK retry, a retried forward): the first
    // outcome, and no change.
    let (o, t) = s.apply(4, rotate);
    assert_eq!(
        o,
        Outcome::Repeated {
            first: Box::new(Outcome::Applied),
            created: None
        }
    );
    assert!(t.is_empty());
    assert_eq!(s.dedup.entries.len(), 1);
    assert_eq!(s, after_first);
    assert_eq!(s.keys[&id(1)].versions.len(), 2);
}

#[test]
fn a_retried_create_reports_what_the_first_attempt_created() {
    let mut s = state();
    let first = stamped(req(9, 2), 1_000, Command::CreateKey { key: key(5) });
    assert_eq!(s.apply(3, first).0, Outcome::Applied);
    // The retry was prepared with other material and another key id.
    let retry = stamped(req(9, 2), 2_000, Command::CreateKey { key: key(6) });
    let (o, _) = s.apply(4, retry);
    assert_eq!(
        o.first(),
        (Outcome::Applied, Some(id(5).to_string())),
        "the key the first attempt created"
    );
    assert!(!s.keys.contains_key(&id(6)), "nothing else was created");
}

#[test]
fn the_same_id_with_another_request_is_refused() {
    let mut s = state();
    let disable = |key: u8, fp: u8| {
        stamped(
            req(3, fp),
            1_000,
            Command::SetKeyEnabled {
                key_id: id(key),
                enabled: false,
            },
        )
    };
    assert_eq!(s.apply(3, disable(1, 1)).0, Outcome::Applied);
    let (o, t) = s.apply(4, disable(2, 2));
    assert!(matches!(o, Outcome::Rejected(Rejection::Invalid(m)) if m.contains("invocation id")));
    assert!(t.is_empty());
    assert_eq!(
        s.keys[&id(2)].state,
        KeyState::Enabled,
        "not silently dropped"
    );
}

#[test]
fn identities_last_the_window_and_then_expire() {
    let mut s = state();
    let enable = |stamp: u64| {
        stamped(
            req(4, 4),
            stamp,
            Command::SetKeyEnabled {
                key_id: id(1),
                enabled: true,
            },
        )
    };
    assert_eq!(s.apply(3, enable(1_000)).0, Outcome::Applied);
    // Other clients' traffic inside the window evicts nothing.
    for i in 0..100u8 {
        let other = stamped(
            Some(RequestKey {
                id: [i; 16],
                fingerprint: [0; 16],
            }),
            1_000 + u64::from(i),
            Command::SetKeyEnabled {
                key_id: id(2),
                enabled: true,
            },
        );
        s.apply(10 + u64::from(i), other);
    }
    let (o, _) = s.apply(200, enable(1_000 + DEDUP_WINDOW_MS));
    assert!(
        matches!(o, Outcome::Repeated { .. }),
        "still inside the window"
    );
    // Past the window (by the newest stamp), it is forgotten and applies anew.
    let (o, t) = s.apply(
        201,
        p(Command::UpdateDescription {
            key_id: id(2),
            description: "tick".into(),
        })
        .with_stamp(1_001 + DEDUP_WINDOW_MS + 100),
    );
    assert_eq!(o, Outcome::Applied);
    assert!(t.contains(&Touched::DedupEvicted([4; 16])));
    assert!(!s.dedup.entries.contains_key(&[4; 16]));
    let rows: Vec<_> = s
        .dedup
        .entries
        .iter()
        .map(|(id, e)| (*id, e.clone()))
        .collect();
    assert_eq!(Dedup::restore(rows, s.dedup.newest_ms), s.dedup);
}

#[test]
fn requests_without_identity_are_never_deduplicated() {
    let mut s = state();
    let tag = |v: &str| {
        p(Command::TagKey {
            key_id: id(1),
            tags: vec![("k".into(), v.into())],
        })
    };
    assert_eq!(s.apply(3, tag("a")).0, Outcome::Applied);
    assert_eq!(s.apply(4, tag("a")).0, Outcome::Applied);
    assert!(s.dedup.entries.is_empty());
}

#[test]
fn replay_is_deterministic() {
    let cmds = [
        init(),
        Command::CreateKey { key: key(1) },
        Command::SetKeyEnabled {
            key_id: id(1),
            enabled: false,
        },
        Command::CreateKey { key: key(2) },
        Command::CreateAlias {
            name: "alias/x".into(),
            key_id: id(2),
            now_ms: 3,
        },
    ];
    let run = || {
        let mut s = State::default();
        for (i, c) in cmds.iter().enumerate() {
            s.apply(i as u64 + 1, p(c.clone()));
        }
        s
    };
    assert_eq!(run(), run());
}

#[test]
fn debug_hides_wrapped_material() {
    let out = format!("{:?}", key(3));
    assert!(!out.contains("9, 9"));
}

#[test]
fn spec_and_usage_are_checked_and_versions_are_for_asymmetric_keys() {
    let mut s = state();
    let mut k = key(5);
    k.spec = KeySpec::EccNistP256;
    k.usage = KeyUsage::EncryptDecrypt;
    assert!(matches!(
        rejected(&mut s, Command::CreateKey { key: k.clone() }),
        Rejection::Invalid(_)
    ));
    k.usage = KeyUsage::SignVerify;
    k.versions[0].public_key = Some(vec![1]);
    assert_eq!(
        s.apply(3, p(Command::CreateKey { key: k })).0,
        Outcome::Applied
    );
    let mut nv = v(2);
    nv.public_key = Some(vec![2]);
    assert_eq!(
        s.apply(
            4,
            p(Command::CreateKeyVersion {
                key_id: id(5),
                version: nv.clone()
            })
        )
        .0,
        Outcome::Applied
    );
    assert_eq!(s.keys[&id(5)].primary().version_id, "v2".into());
    assert!(s.keys[&id(5)].version_by_id("v1").is_some());
    // Symmetric keys rotate instead.
    assert!(matches!(
        rejected(
            &mut s,
            Command::CreateKeyVersion {
                key_id: id(1),
                version: nv
            }
        ),
        Rejection::Unsupported(_)
    ));
}

#[test]
fn access_keys_can_be_added_and_removed_but_not_the_last_admin() {
    let mut s = state();
    // The bootstrap admin is a user with a policy, not a flag.
    assert_eq!(
        s.users[BOOTSTRAP_ADMIN_USER].policy.as_deref(),
        Some(BOOTSTRAP_ADMIN_POLICY)
    );
    let k = AccessKeyRecord {
        access_key_id: "AKIAAPP".into(),
        wrapped_secret: vec![1],
        user: "app".into(),
        created_ms: 1,
    };
    let (o, t) = s.apply(3, p(Command::CreateAccessKey { key: k }));
    assert_eq!(o, Outcome::Applied);
    assert_eq!(
        t,
        vec![
            Touched::AccessKey("AKIAAPP".into()),
            Touched::User("app".into())
        ]
    );
    // A new user may do nothing until it gets a policy.
    assert_eq!(s.users["app"].policy, None);
    assert!(matches!(
        rejected(
            &mut s,
            Command::DeleteAccessKey {
                access_key_id: "AKIAADMIN".into()
            }
        ),
        Rejection::InvalidState(_)
    ));
    let (o, t) = s.apply(
        4,
        p(Command::DeleteAccessKey {
            access_key_id: "AKIAAPP".into(),
        }),
    );
    assert_eq!(o, Outcome::Applied);
    assert_eq!(t, vec![Touched::AccessKey("AKIAAPP".into())]);
    assert!(matches!(
        rejected(
            &mut s,
            Command::DeleteAccessKey {
                access_key_id: "AKIAAPP".into()
            }
        ),
        Rejection::NotFound(_)
    ));
}

#[test]
fn user_policies_are_put_and_removed_on_existing_users_only() {
    let mut s = state();
    let doc = r#"{"Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]}"#;
    let put = |user: &str, policy: Option<&str>| Command::PutUserPolicy {
        user: user.into(),
        policy: policy.map(str::to_string),
    };
    assert!(matches!(
        rejected(&mut s, put("nobody", Some(doc))),
        Rejection::NotFound(_)
    ));
    let (o, t) = s.apply(7, p(put(BOOTSTRAP_ADMIN_USER, Some(doc))));
    assert_eq!(o, Outcome::Applied);
    assert_eq!(t, vec![Touched::User(BOOTSTRAP_ADMIN_USER.into())]);
    assert_eq!(s.users[BOOTSTRAP_ADMIN_USER].policy.as_deref(), Some(doc));
    assert_eq!(s.users[BOOTSTRAP_ADMIN_USER].revision, 7);
    s.apply(8, p(put(BOOTSTRAP_ADMIN_USER, None)));
    assert_eq!(s.users[BOOTSTRAP_ADMIN_USER].policy, None);
}

#[test]
fn user_names_are_checked() {
    let mut s = state();
    for bad in ["", "has space", "slash/y", &"x".repeat(65)] {
        let k = AccessKeyRecord {
            access_key_id: format!("AKIA{}", bad.len()),
            wrapped_secret: vec![1],
            user: bad.to_string(),
            created_ms: 1,
        };
        assert!(
            matches!(
                rejected(&mut s, Command::CreateAccessKey { key: k }),
                Rejection::Invalid(_)
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn a_key_policy_is_replaced_but_not_while_pending_deletion() {
    let mut s = state();
    s.apply(3, p(Command::CreateKey { key: key(1) }));
    assert_eq!(s.keys[&id(1)].policy, None);
    let doc = "{}".to_string();
    s.apply(
        4,
        p(Command::PutKeyPolicy {
            key_id: id(1),
            policy: doc.clone(),
        }),
    );
    assert_eq!(s.keys[&id(1)].policy.as_deref(), Some("{}"));
    assert_eq!(s.keys[&id(1)].revision, 4);
    s.apply(
        5,
        p(Command::ScheduleKeyDeletion {
            key_id: id(1),
            window_days: 7,
        }),
    );
    assert!(matches!(
        rejected(
            &mut s,
            Command::PutKeyPolicy {
                key_id: id(1),
                policy: doc
            }
        ),
        Rejection::InvalidState(_)
    ));
}

fn grant(n: u32, name: Option<&str>) -> GrantRecord {
    GrantRecord {
        grant_id: format!("g{n}"),
        key_id: id(1),
        name: name.map(str::to_string),
        grantee: "arn:aws:iam::111122223333:user/app".into(),
        retiring: None,
        operations: vec!["Decrypt".into()],
        constraints: None,
        issuer: "arn:aws:iam::111122223333:user/admin".into(),
        created_ms: 1,
    }
}

#[test]
fn grants_are_created_once_by_name_and_removed_for_good() {
    let mut s = state();
    s.apply(3, p(Command::CreateKey { key: key(1) }));
    let (o, t) = s.apply(
        4,
        p(Command::CreateGrant {
            grant: Box::new(grant(1, Some("n"))),
        }),
    );
    assert_eq!(o, Outcome::Applied);
    assert_eq!(t, vec![Touched::Grant("g1".into()), Touched::Key(id(1))]);
    assert_eq!(s.keys[&id(1)].revision, 4, "a grant is a change of its key");
    // The same name and terms: the existing grant's id.
    assert_eq!(
        rejected(
            &mut s,
            Command::CreateGrant {
                grant: Box::new(grant(2, Some("n")))
            }
        ),
        Rejection::AlreadyExists("g1".into())
    );
    // The same name with other terms is another grant.
    let mut other = grant(3, Some("n"));
    other.operations.push("Encrypt".into());
    assert_eq!(
        s.apply(
            5,
            p(Command::CreateGrant {
                grant: Box::new(other)
            })
        )
        .0,
        Outcome::Applied
    );
    assert_eq!(s.key_grants(&id(1)).count(), 2);

    let remove = |g: &str| Command::RemoveGrant {
        key_id: id(1),
        grant_id: g.into(),
        now_ms: 9,
    };
    assert_eq!(s.apply(6, p(remove("g1"))).0, Outcome::Applied);
    assert_eq!(
        s.grants["g1"],
        GrantRow::Removed {
            key_id: id(1),
            removed_ms: 9
        }
    );
    assert!(matches!(
        rejected(&mut s, remove("g1")),
        Rejection::NotFound(_)
    ));
    assert_eq!(
        s.key_grants(&id(1))
            .map(|g| g.grant_id.as_str())
            .collect::<Vec<_>>(),
        ["g3"]
    );

    // The indexes are derived: rebuilt from the rows alone.
    let mut copy = s.clone();
    copy.grants_by_key.clear();
    copy.removed_grants.clear();
    copy.rebuild_indexes();
    assert_eq!(copy.grants_by_key, s.grants_by_key);
    assert_eq!(copy.removed_grants, s.removed_grants);

    // Deleting the key removes its grants.
    s.apply(
        7,
        p(Command::ScheduleKeyDeletion {
            key_id: id(1),
            window_days: 7,
        }),
    );
    s.apply(
        8,
        stamped(None, 8 * DAY_MS, Command::PurgeKey { key_id: id(1) }),
    );
    assert_eq!(s.key_grants(&id(1)).count(), 0);
    assert!(matches!(s.grants["g3"], GrantRow::Removed { .. }));
}

/// A removed grant's row is kept for `REMOVED_GRANT_KEPT_MS`, so that its
/// token is refused; then the scheduler's `ForgetRemovedGrants`, judged by
/// its entry's stamp, forgets it (the token is by then too old to be
/// honored without the grant's row).
/// ListRetirableGrants reads an index by retiring principal, kept by every
/// change of a grant and equal to one rebuilt from the rows.
#[test]
fn retirable_grants_are_indexed_by_their_retiring_principal() {
    let mut s = state();
    let with = |n: u32, retiring: Option<&str>| {
        let mut g = grant(n, None);
        g.retiring = retiring.map(str::to_string);
        Command::CreateGrant { grant: Box::new(g) }
    };
    let (alice, bob) = (
        "arn:aws:iam::111122223333:user/alice",
        "arn:aws:iam::111122223333:user/bob",
    );
    for (i, c) in [
        with(1, Some(alice)),
        with(2, Some(bob)),
        with(3, Some(alice)),
        with(4, None),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(s.apply(3 + i as u64, p(c)).0, Outcome::Applied);
    }
    let ids = |s: &State, who: &str| {
        s.retirable_grants(who)
            .map(|g| g.grant_id.clone())
            .collect::<Vec<_>>()
    };
    let derived = |s: &State| {
        let mut copy = s.clone();
        copy.grants_by_retiring.clear();
        copy.rebuild_indexes();
        assert_eq!(copy.grants_by_retiring, s.grants_by_retiring);
    };
    assert_eq!(ids(&s, alice), ["g1", "g3"]);
    assert_eq!(ids(&s, bob), ["g2"]);
    derived(&s);
    s.apply(
        10,
        p(Command::RemoveGrant {
            key_id: id(1),
            grant_id: "g1".into(),
            now_ms: 5,
        }),
    );
    assert_eq!(ids(&s, alice), ["g3"]);
    derived(&s);
    // Deleting the key removes the rest.
    s.apply(
        11,
        p(Command::ScheduleKeyDeletion {
            key_id: id(1),
            window_days: 7,
        }),
    );
    s.apply(
        12,
        stamped(None, 8 * DAY_MS, Command::PurgeKey { key_id: id(1) }),
    );
    assert!(ids(&s, alice).is_empty() && ids(&s, bob).is_empty());
    assert!(s.grants_by_retiring.is_empty());
    derived(&s);
}

#[test]
fn removed_grants_are_forgotten_once_their_tokens_cannot_stand_alone() {
    let kept = crate::rules::REMOVED_GRANT_KEPT_MS;
    const _: () = assert!(crate::rules::REMOVED_GRANT_KEPT_MS > crate::rules::GRANT_TOKEN_ALONE_MS);
    let mut s = state();
    for n in [1, 2, 3] {
        s.apply(
            2 + u64::from(n),
            p(Command::CreateGrant {
                grant: Box::new(grant(n, None)),
            }),
        );
    }
    let remove = |g: &str, at: u64| Command::RemoveGrant {
        key_id: id(1),
        grant_id: g.into(),
        now_ms: at,
    };
    s.apply(6, p(remove("g1", 1_000)));
    s.apply(7, p(remove("g2", 5_000)));
    assert!(!s.removed_grants_due(1_000 + kept - 1));
    assert!(matches!(
        rejected_at(&mut s, 1_000 + kept - 1, Command::ForgetRemovedGrants),
        Rejection::NotDue(_)
    ));
    assert!(s.grants.contains_key("g1"));

    assert!(s.removed_grants_due(1_000 + kept));
    let (o, t) = s.apply(8, stamped(None, 1_000 + kept, Command::ForgetRemovedGrants));
    assert_eq!(o, Outcome::Applied);
    assert_eq!(t, vec![Touched::Grant("g1".into())]);
    assert!(!s.grants.contains_key("g1"));
    assert!(matches!(s.grants["g2"], GrantRow::Removed { .. }));
    assert!(matches!(s.grants["g3"], GrantRow::Active(_)));
    let mut copy = s.clone();
    copy.removed_grants.clear();
    copy.rebuild_indexes();
    assert_eq!(copy.removed_grants, s.removed_grants);

    let (o, t) = s.apply(9, stamped(None, 5_000 + kept, Command::ForgetRemovedGrants));
    assert_eq!(o, Outcome::Applied);
    assert_eq!(t, vec![Touched::Grant("g2".into())]);
    assert!(s.removed_grants.is_empty());
    assert_eq!(s.grants.len(), 1, "the live grant stays");
    assert!(!s.removed_grants_due(u64::MAX));
}

/// However many removed grants are due, one entry forgets a bounded number
/// of them, the earliest removed first; the next entry the rest.
#[test]
fn one_entry_forgets_a_bounded_number_of_removed_grants() {
    use crate::rules::{MAX_GRANTS_FORGOTTEN_PER_ENTRY as MAX, REMOVED_GRANT_KEPT_MS};
    let mut s = state();
    let n = MAX as u32 + 5;
    let mut index = 3;
    for g in 1..=n {
        for c in [
            Command::CreateGrant {
                grant: Box::new(grant(g, None)),
            },
            Command::RemoveGrant {
                key_id: id(1),
                grant_id: format!("g{g}"),
                now_ms: u64::from(g),
            },
        ] {
            assert_eq!(s.apply(index, p(c)).0, Outcome::Applied);
            index += 1;
        }
    }
    let stamp = u64::from(n) + REMOVED_GRANT_KEPT_MS;
    let (o, t) = s.apply(index, stamped(None, stamp, Command::ForgetRemovedGrants));
    assert_eq!(o, Outcome::Applied);
    assert_eq!(t.len(), MAX);
    assert_eq!(t[0], Touched::Grant("g1".into()), "the earliest first");
    assert_eq!(s.grants.len(), 5);
    assert!(s.removed_grants_due(stamp));
    let (o, t) = s.apply(
        index + 1,
        stamped(None, stamp, Command::ForgetRemovedGrants),
    );
    assert_eq!(o, Outcome::Applied);
    assert_eq!(t.len(), 5);
    assert!(s.grants.is_empty() && s.removed_grants.is_empty());
}

#[test]
fn a_key_holds_at_most_fifty_thousand_grants() {
    let mut s = state();
    s.apply(3, p(Command::CreateKey { key: key(1) }));
    for n in 0..MAX_GRANTS_PER_KEY as u32 {
        assert_eq!(
            s.apply(
                4 + u64::from(n),
                p(Command::CreateGrant {
                    grant: Box::new(grant(n, None))
                })
            )
            .0,
            Outcome::Applied
        );
    }
    assert!(matches!(
        rejected(
            &mut s,
            Command::CreateGrant {
                grant: Box::new(grant(u32::MAX, None))
            }
        ),
        Rejection::LimitExceeded(_)
    ));
}

#[test]
fn the_alias_index_follows_every_alias_change() {
    let mut s = state();
    s.apply(3, p(Command::CreateKey { key: key(1) }));
    s.apply(4, p(Command::CreateKey { key: key(2) }));
    let names = |s: &State, k: u8| s.key_aliases(&id(k)).cloned().collect::<Vec<_>>();
    s.apply(
        5,
        p(Command::CreateAlias {
            name: "alias/a".into(),
            key_id: id(1),
            now_ms: 1,
        }),
    );
    s.apply(
        6,
        p(Command::CreateAlias {
            name: "alias/b".into(),
            key_id: id(1),
            now_ms: 1,
        }),
    );
    assert_eq!(names(&s, 1), ["alias/a", "alias/b"]);
    s.apply(
        7,
        p(Command::UpdateAlias {
            name: "alias/b".into(),
            key_id: id(2),
            now_ms: 2,
        }),
    );
    assert_eq!(names(&s, 1), ["alias/a"]);
    assert_eq!(names(&s, 2), ["alias/b"]);
    s.apply(
        8,
        p(Command::DeleteAlias {
            name: "alias/a".into(),
        }),
    );
    assert!(names(&s, 1).is_empty());
    let mut copy = s.clone();
    copy.aliases_by_key.clear();
    copy.rebuild_indexes();
    assert_eq!(copy.aliases_by_key, s.aliases_by_key);
    s.apply(
        9,
        p(Command::ScheduleKeyDeletion {
            key_id: id(2),
            window_days: 7,
        }),
    );
    s.apply(
        10,
        stamped(None, 8 * DAY_MS, Command::PurgeKey { key_id: id(2) }),
    );
    assert!(names(&s, 2).is_empty());
}

#[test]
fn key_usage_keeps_the_newest_use_and_leaves_revisions_alone() {
    let mut s = state();
    let used = |op: &str, at_ms, rid: &str| KeyLastUsage {
        operation: op.into(),
        at_ms,
        request_id: rid.into(),
    };
    let revision = s.keys[&id(1)].revision;
    let report = |since_ms, uses| Command::RecordKeyUsage { since_ms, uses };
    let (o, touched) = s.apply(
        3,
        p(report(
            40,
            vec![
                (id(1), used("Encrypt", 50, "r1")),
                (id(9), used("Sign", 50, "gone")),
            ],
        )),
    );
    assert_eq!(o, Outcome::Applied);
    assert_eq!(touched, vec![Touched::UsageSince, Touched::KeyUsage(id(1))]);
    assert_eq!(s.usage_since_ms, Some(40));
    assert!(
        !s.key_usage.contains_key(&id(9)),
        "unknown keys are skipped"
    );
    assert_eq!(
        s.keys[&id(1)].revision,
        revision,
        "crypto does not wait for usage"
    );
    // An older report (another node's, late) does not replace a newer use;
    // the first reporter's start stays the tracking start.
    s.apply(4, p(report(10, vec![(id(1), used("Decrypt", 45, "r0"))])));
    assert_eq!(s.key_usage[&id(1)].request_id, "r1");
    assert_eq!(s.usage_since_ms, Some(40));
    s.apply(5, p(report(10, vec![(id(1), used("Decrypt", 60, "r2"))])));
    assert_eq!(s.key_usage[&id(1)].operation, "Decrypt");
    // Equal times: every replica keeps the same one.
    s.apply(6, p(report(10, vec![(id(1), used("Sign", 60, "r3"))])));
    assert_eq!(s.key_usage[&id(1)].request_id, "r3");
    // The leader's stamp caps a reporter's clock.
    let capped = report(10, vec![(id(2), used("Encrypt", u64::MAX, "r4"))]).stamped(70);
    s.apply(7, p(capped));
    assert_eq!(s.key_usage[&id(2)].at_ms, 70);
    // A deleted key's usage goes with it.
    s.apply(
        8,
        stamped(
            None,
            100,
            Command::ScheduleKeyDeletion {
                key_id: id(2),
                window_days: 7,
            },
        ),
    );
    let (o, touched) = s.apply(
        9,
        stamped(None, 100 + 8 * DAY_MS, Command::PurgeKey { key_id: id(2) }),
    );
    assert_eq!(o, Outcome::Applied);
    assert!(touched.contains(&Touched::KeyUsage(id(2))));
    assert!(!s.key_usage.contains_key(&id(2)));
}

// ---- Imported key material ----

const T0: u64 = 1_000 * DAY_MS;

fn external(n: u8, spec: KeySpec, usage: KeyUsage) -> KeyRecord {
    KeyRecord::new_external(
        id(n),
        String::new(),
        usage,
        spec,
        format!("v-{n}").into(),
        10,
    )
}

fn import(n: u8, digest: u8, valid_to_ms: Option<u64>) -> Command {
    Command::ImportKeyMaterial {
        key_id: id(n),
        wrapped: vec![7; 40],
        public_key: None,
        material_digest: [digest; 32],
        valid_to_ms,
        token_valid_to_ms: T0 + DAY_MS,
    }
}

/// `state()` plus key 5, symmetric and of origin EXTERNAL, pending import.
fn import_state() -> State {
    let mut s = state();
    let k = external(5, KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
    assert_eq!(
        s.apply(3, stamped(None, T0, Command::CreateKey { key: k }))
            .0,
        Outcome::Applied
    );
    s
}

fn apply_at(s: &mut State, index: u64, stamp_ms: u64, cmd: Command) -> Outcome {
    s.apply(index, stamped(None, stamp_ms, cmd)).0
}

fn rejected_at(s: &mut State, stamp_ms: u64, cmd: Command) -> Rejection {
    let before = s.clone();
    match s.apply(100, stamped(None, stamp_ms, cmd)) {
        (Outcome::Rejected(r), _) => {
            assert_eq!(s.keys, before.keys, "a rejected command changes no key");
            r
        }
        (o, _) => panic!("expected a rejection, got {o:?}"),
    }
}

#[test]
fn an_external_key_starts_pending_import_and_refuses_what_needs_material() {
    let mut s = import_state();
    let k = &s.keys[&id(5)];
    assert_eq!(k.state, KeyState::PendingImport);
    assert_eq!(k.origin, Origin::External);
    assert!(!k.has_material());
    // Neither enabled nor disabled, rotated nor versioned without material.
    for enabled in [true, false] {
        assert!(matches!(
            rejected(
                &mut s,
                Command::SetKeyEnabled {
                    key_id: id(5),
                    enabled
                }
            ),
            Rejection::InvalidState(_)
        ));
    }
    assert!(matches!(
        rejected(
            &mut s,
            Command::SetRotation {
                key_id: id(5),
                schedule: Some(RotationSchedule {
                    period_days: 365,
                    next_ms: 0
                })
            }
        ),
        Rejection::Unsupported(_)
    ));
    // A generated key takes no import.
    assert!(matches!(
        rejected_at(&mut s, T0, import(1, 1, None)),
        Rejection::Unsupported(_)
    ));
    assert!(matches!(
        rejected(&mut s, Command::DeleteImportedKeyMaterial { key_id: id(1) }),
        Rejection::Unsupported(_)
    ));
    // An external key proposed with material, or a generated one without,
    // is refused.
    let mut bad = external(6, KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
    bad.versions[0].wrapped = vec![1; 8];
    assert!(matches!(
        rejected(&mut s, Command::CreateKey { key: bad }),
        Rejection::Invalid(_)
    ));
    let mut bad = key(6);
    bad.versions[0].wrapped.clear();
    assert!(matches!(
        rejected(&mut s, Command::CreateKey { key: bad }),
        Rejection::Invalid(_)
    ));
}

#[test]
fn import_enables_and_only_the_same_material_comes_back() {
    let mut s = import_state();
    assert_eq!(
        apply_at(&mut s, 10, T0, import(5, 1, None)),
        Outcome::Applied
    );
    let k = &s.keys[&id(5)];
    assert_eq!(k.state, KeyState::Enabled);
    assert_eq!(k.revision, 10);
    assert!(k.has_material());
    assert_eq!(k.import.as_ref().unwrap().material_digest, Some([1; 32]));
    // Other material: refused, whether material is held or not.
    assert!(matches!(
        rejected_at(&mut s, T0, import(5, 2, None)),
        Rejection::IncorrectKeyMaterial(_)
    ));
    assert_eq!(
        apply_at(
            &mut s,
            11,
            T0,
            Command::DeleteImportedKeyMaterial { key_id: id(5) }
        ),
        Outcome::Applied
    );
    let k = &s.keys[&id(5)];
    assert_eq!(k.state, KeyState::PendingImport);
    assert!(!k.has_material());
    assert_eq!(
        k.versions[0].version_id,
        "v-5".into(),
        "the version keeps its id"
    );
    assert!(matches!(
        rejected_at(&mut s, T0, import(5, 2, None)),
        Rejection::IncorrectKeyMaterial(_)
    ));
    // The same material again: enabled again.
    assert_eq!(
        apply_at(&mut s, 12, T0, import(5, 1, None)),
        Outcome::Applied
    );
    assert_eq!(s.keys[&id(5)].state, KeyState::Enabled);
    // Disabled keys stay disabled through a re-import.
    assert_eq!(
        apply_at(
            &mut s,
            13,
            T0,
            Command::SetKeyEnabled {
                key_id: id(5),
                enabled: false
            }
        ),
        Outcome::Applied
    );
    assert_eq!(
        apply_at(&mut s, 14, T0, import(5, 1, Some(T0 + 5))),
        Outcome::Applied
    );
    assert_eq!(s.keys[&id(5)].state, KeyState::Disabled);
    assert_eq!(
        s.keys[&id(5)].import.as_ref().unwrap().valid_to_ms,
        Some(T0 + 5)
    );
}

#[test]
fn import_tokens_and_valid_to_are_judged_by_the_stamp() {
    let mut s = import_state();
    // The token ended before the entry was stamped.
    assert!(matches!(
        rejected_at(&mut s, T0 + DAY_MS + 1, import(5, 1, None)),
        Rejection::ExpiredImportToken(_)
    ));
    // ValidTo in the past, now, or beyond a year.
    for v in [T0 - 1, T0, T0 + 365 * DAY_MS + 1] {
        assert!(matches!(
            rejected_at(&mut s, T0, import(5, 1, Some(v))),
            Rejection::Invalid(_)
        ));
    }
    assert_eq!(
        apply_at(&mut s, 10, T0, import(5, 1, Some(T0 + 365 * DAY_MS))),
        Outcome::Applied
    );
    // Asymmetric material comes with its public key, the rest without.
    let mut with_public = import(5, 1, None);
    if let Command::ImportKeyMaterial { public_key, .. } = &mut with_public {
        *public_key = Some(vec![1, 2, 3]);
    }
    assert!(matches!(
        rejected_at(&mut s, T0, with_public),
        Rejection::Invalid(_)
    ));
}

#[test]
fn material_expires_when_the_stamp_passes_valid_to() {
    let mut s = import_state();
    assert_eq!(
        apply_at(&mut s, 10, T0, import(5, 1, Some(T0 + DAY_MS))),
        Outcome::Applied
    );
    assert!(s.due_expirations(T0 + DAY_MS - 1).is_empty());
    assert_eq!(s.due_expirations(T0 + DAY_MS), vec![id(5)]);
    // Not due by the stamp, whatever the proposer thought.
    assert!(matches!(
        rejected_at(
            &mut s,
            T0 + DAY_MS - 1,
            Command::ExpireKeyMaterial { key_id: id(5) }
        ),
        Rejection::NotDue(_)
    ));
    assert_eq!(
        apply_at(
            &mut s,
            11,
            T0 + DAY_MS,
            Command::ExpireKeyMaterial { key_id: id(5) }
        ),
        Outcome::Applied
    );
    assert_eq!(s.keys[&id(5)].state, KeyState::PendingImport);
    assert!(s.due_expirations(T0 + 2 * DAY_MS).is_empty());
    schedule_is_derived(&s);
    // Expiring twice changes nothing the second time.
    assert!(matches!(
        rejected_at(
            &mut s,
            T0 + DAY_MS,
            Command::ExpireKeyMaterial { key_id: id(5) }
        ),
        Rejection::NotDue(_)
    ));
    // Material that does not expire is never due.
    assert_eq!(
        apply_at(&mut s, 12, T0 + DAY_MS, import(5, 1, None)),
        Outcome::Applied
    );
    assert!(s.due_expirations(u64::MAX).is_empty());
    schedule_is_derived(&s);
}

#[test]
fn a_key_pending_deletion_loses_material_but_stays_pending_deletion() {
    let mut s = import_state();
    assert_eq!(
        apply_at(&mut s, 10, T0, import(5, 1, Some(T0 + DAY_MS))),
        Outcome::Applied
    );
    assert_eq!(
        apply_at(
            &mut s,
            11,
            T0,
            Command::ScheduleKeyDeletion {
                key_id: id(5),
                window_days: 7
            }
        ),
        Outcome::Applied
    );
    assert!(matches!(
        rejected_at(&mut s, T0, import(5, 1, None)),
        Rejection::InvalidState(_)
    ));
    assert_eq!(
        apply_at(
            &mut s,
            12,
            T0 + DAY_MS,
            Command::ExpireKeyMaterial { key_id: id(5) }
        ),
        Outcome::Applied
    );
    assert_eq!(s.keys[&id(5)].state, KeyState::PendingDeletion);
    // Canceled, it has no material: pending import, not disabled.
    assert_eq!(
        apply_at(&mut s, 13, T0, Command::CancelDeletion { key_id: id(5) }),
        Outcome::Applied
    );
    assert_eq!(s.keys[&id(5)].state, KeyState::PendingImport);
}

#[test]
fn imports_apply_once_and_replay_alike() {
    let mut s = import_state();
    let first = s.apply(10, stamped(req(40, 1), T0, import(5, 1, Some(T0 + DAY_MS))));
    assert_eq!(first.0, Outcome::Applied);
    // Deleted meanwhile; the retried import changes nothing.
    assert_eq!(
        apply_at(
            &mut s,
            11,
            T0,
            Command::DeleteImportedKeyMaterial { key_id: id(5) }
        ),
        Outcome::Applied
    );
    let before = s.keys.clone();
    let again = s.apply(
        12,
        stamped(req(40, 1), T0 + 1, import(5, 1, Some(T0 + DAY_MS))),
    );
    assert!(matches!(again.0, Outcome::Repeated { .. }));
    assert_eq!(s.keys, before);
    assert_eq!(s.keys[&id(5)].state, KeyState::PendingImport);

    // The same entries give the same state on every replica.
    let log = [
        stamped(None, T0, import(5, 1, Some(T0 + DAY_MS))),
        stamped(req(41, 1), T0, import(5, 2, None)),
        stamped(
            None,
            T0 + DAY_MS,
            Command::ExpireKeyMaterial { key_id: id(5) },
        ),
        stamped(None, T0 + DAY_MS, import(5, 1, None)),
        stamped(
            req(42, 1),
            T0,
            Command::DeleteImportedKeyMaterial { key_id: id(5) },
        ),
    ];
    let (mut a, mut b) = (import_state(), import_state());
    let outcomes_a: Vec<Outcome> = log
        .iter()
        .enumerate()
        .map(|(i, e)| a.apply(20 + i as u64, e.clone()).0)
        .collect();
    let outcomes_b: Vec<Outcome> = log
        .iter()
        .enumerate()
        .map(|(i, e)| b.apply(20 + i as u64, e.clone()).0)
        .collect();
    assert_eq!(a, b);
    assert_eq!(outcomes_a, outcomes_b);
    assert!(matches!(
        outcomes_a[1],
        Outcome::Rejected(Rejection::IncorrectKeyMaterial(_))
    ));
    assert_eq!(a.keys[&id(5)].state, KeyState::PendingImport);
}

#[test]
fn import_commands_keep_their_times_through_the_stamp() {
    let c = import(5, 1, Some(T0 + 9));
    assert_eq!(c.clone().stamped(T0), c);
    assert_eq!(c.key_id(), Some(id(5)));
    assert_eq!(c.name(), "ImportKeyMaterial");
    let debug = format!(
        "{:?}",
        external(5, KeySpec::Hmac256, KeyUsage::GenerateVerifyMac)
    );
    assert!(debug.contains("PendingImport"));
}

#[test]
fn a_batch_applies_each_proposal_as_if_alone_and_answers_each() {
    let mut s = state();
    let batch = Command::Batch {
        proposals: vec![
            stamped(req(7, 1), 40, Command::CreateKey { key: key(3) }),
            // Key 1 exists: rejected, and the rest still applies.
            stamped(None, 40, Command::CreateKey { key: key(1) }),
            // A retry of the first, in the same entry: its first outcome.
            stamped(req(7, 1), 40, Command::CreateKey { key: key(3) }),
            stamped(
                None,
                40,
                Command::UpdateDescription {
                    key_id: id(2),
                    description: "two".into(),
                },
            ),
            stamped(None, 40, Command::Batch { proposals: vec![] }),
        ],
    };
    let (outcome, touched) = s.apply(50, stamped(None, 41, batch));
    let Outcome::Batch(outcomes) = outcome else {
        panic!("not a batch outcome: {outcome:?}");
    };
    assert_eq!(outcomes.len(), 5);
    assert_eq!(outcomes[0], Outcome::Applied);
    assert!(matches!(
        outcomes[1],
        Outcome::Rejected(Rejection::AlreadyExists(_))
    ));
    assert_eq!(
        outcomes[2],
        Outcome::Repeated {
            first: Box::new(Outcome::Applied),
            created: Some(id(3).to_string()),
        }
    );
    assert_eq!(outcomes[3], Outcome::Applied);
    assert!(matches!(
        outcomes[4],
        Outcome::Rejected(Rejection::Invalid(_))
    ));
    // Applied at the entry's index, and every change is reported for storage.
    assert_eq!(s.keys[&id(3)].revision, 50);
    assert_eq!(s.keys[&id(2)].description, "two");
    assert!(touched.contains(&Touched::Key(id(3))));
    assert!(touched.contains(&Touched::Key(id(2))));
    // The same as applying them one by one at that index.
    let mut one_by_one = state();
    for c in [
        stamped(req(7, 1), 41, Command::CreateKey { key: key(3) }),
        stamped(None, 41, Command::CreateKey { key: key(1) }),
        stamped(req(7, 1), 41, Command::CreateKey { key: key(3) }),
        stamped(
            None,
            41,
            Command::UpdateDescription {
                key_id: id(2),
                description: "two".into(),
            },
        ),
    ] {
        one_by_one.apply(50, c);
    }
    assert_eq!(s, one_by_one);
}

/// The schedule kept current by `apply` is the one the keys give.
fn schedule_is_derived(s: &State) {
    assert_eq!(
        s.schedule,
        crate::schedule::Schedule::build(s.keys.values())
    );
}
