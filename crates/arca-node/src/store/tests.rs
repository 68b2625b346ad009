use std::os::unix::fs::PermissionsExt;

use super::*;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn set_mode(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

#[test]
fn a_newer_format_is_refused_and_an_older_one_is_recorded_as_this_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_database(dir.path()).unwrap();
    // Nothing recorded: a data directory of a release before formats.
    assert_eq!(format_version(&db.get()).unwrap(), 1);
    assert_eq!(check_format(&db, dir.path()).unwrap(), Ok(()));
    assert_eq!(format_version(&db.get()).unwrap(), FORMAT_VERSION);
    drop(db);
    set_format_version(dir.path(), FORMAT_VERSION + 1).unwrap();
    let db = open_database(dir.path()).unwrap();
    let e = check_format(&db, dir.path()).unwrap().unwrap_err();
    assert_eq!(e.found, FORMAT_VERSION + 1);
    assert!(e.to_string().contains("written by a newer release"), "{e}");
    // Refused, not rewritten.
    assert_eq!(format_version(&db.get()).unwrap(), FORMAT_VERSION + 1);
}

#[test]
fn a_new_data_dir_is_0700_and_the_database_0600() {
    let tmp = tempfile::tempdir().unwrap();
    // Parents that do not exist yet are created too.
    let dir = tmp.path().join("a/b/data");
    let _db = open_database(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("arca.redb")), 0o600);
}

#[test]
fn an_open_data_dir_and_database_are_tightened() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    drop(open_database(&dir).unwrap());
    // As an older release, or a careless copy, left them.
    set_mode(&dir, 0o755);
    set_mode(&dir.join("arca.redb"), 0o644);
    let _db = open_database(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("arca.redb")), 0o600);
}

#[test]
fn the_rewritten_database_keeps_mode_0600() {
    let tmp = tempfile::tempdir().unwrap();
    let db = open_database(tmp.path()).unwrap();
    db.rewrite().unwrap();
    assert_eq!(mode(&tmp.path().join("arca.redb")), 0o600);
}

/// A batch entry (group commit) is stored and read back like any entry.
#[test]
fn a_batch_entry_round_trips_through_the_stored_encoding() {
    let one = arca_state::Proposal::new(
        None,
        arca_state::Command::UpdateDescription {
            key_id: arca_state::KeyId::from_bytes([3; 16]),
            description: "three".into(),
        },
    );
    let batch = arca_state::Proposal::new(
        None,
        arca_state::Command::Batch {
            proposals: vec![one.clone(), one],
        },
    );
    let back: arca_state::Proposal = dec(&enc(&batch).unwrap()).unwrap();
    assert_eq!(back, batch);
    let outcome = arca_state::Outcome::Batch(vec![arca_state::Outcome::Applied]);
    let back: arca_state::Outcome = dec(&enc(&outcome).unwrap()).unwrap();
    assert_eq!(back, outcome);
}

fn entry(index: u64, command: arca_state::Command) -> Entry {
    Entry {
        log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(arca_state::Proposal::new(None, command)),
    }
}

fn user(name: &str) -> arca_state::Command {
    arca_state::Command::CreateAccessKey {
        key: AccessKeyRecord {
            access_key_id: format!("AKIA{}", name.to_uppercase()),
            wrapped_secret: vec![1, 2, 3],
            user: name.into(),
            created_ms: 5,
        },
    }
}

fn init() -> arca_state::Command {
    arca_state::Command::InitCluster {
        info: arca_state::ClusterInfo {
            region: "us-east-1".into(),
            account_id: "111122223333".into(),
            root_check_value: [1; 16],
            created_ms: 5,
        },
        admin: AccessKeyRecord {
            access_key_id: "AKIAADMIN".into(),
            wrapped_secret: vec![1, 2, 3],
            user: "alice".into(),
            created_ms: 5,
        },
    }
}

fn users(shared: &SharedState) -> Vec<String> {
    shared.read().state.users.keys().cloned().collect()
}

/// Apply is all or nothing: when the commit of a batch of entries fails,
/// the state readers see is what the file holds, not the half of it that
/// was staged; the same entries apply once the commit succeeds.
#[test]
fn a_failed_commit_leaves_the_shared_state_as_the_file_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_database(dir.path()).unwrap();
    let sm = StateMachineStore::open(db.clone(), Default::default()).unwrap();
    let shared = sm.shared();
    let (out, last) = apply_entries(&db, &shared, vec![entry(1, init())]).unwrap();
    assert_eq!(out, vec![arca_state::Outcome::Applied]);
    assert_eq!(users(&shared), ["alice"]);
    assert_eq!(last.map(|l| l.index), Some(1));

    let next = vec![entry(2, user("bob")), entry(3, user("carol"))];
    FAIL_COMMIT.with(|f| f.set(true));
    let failed = apply_entries(&db, &shared, next.clone());
    FAIL_COMMIT.with(|f| f.set(false));
    assert!(failed.is_err());
    assert_eq!(users(&shared), ["alice"]);
    assert_eq!(shared.read().last_applied.map(|l| l.index), Some(1));

    let (out, last) = apply_entries(&db, &shared, next).unwrap();
    assert_eq!(out, vec![arca_state::Outcome::Applied; 2]);
    assert_eq!(last.map(|l| l.index), Some(3));
    assert_eq!(users(&shared), ["alice", "bob", "carol"]);
    // What readers see is what a restart loads.
    let loaded = load_state(&db.get()).unwrap();
    assert_eq!(loaded.state.users, shared.read().state.users);
    assert_eq!(loaded.last_applied, shared.read().last_applied);
}

/// The files in a data directory's snapshot directory, sorted.
fn snapshot_files(db: &Db) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(db.snapshot_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

async fn read_all(mut f: tokio::fs::File) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    f.seek(std::io::SeekFrom::Start(0)).await.unwrap();
    let mut out = Vec::new();
    f.read_to_end(&mut out).await.unwrap();
    out
}

/// A snapshot is a file of its own (0600), holding what the database
/// encodes; the next one replaces it, and the current one is what Raft
/// is given to send.
#[tokio::test]
async fn a_snapshot_is_a_file_of_its_own_and_replaces_the_one_before() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_database(dir.path()).unwrap();
    let mut sm = StateMachineStore::open(db.clone(), Default::default()).unwrap();
    let shared = sm.shared();
    apply_entries(&db, &shared, vec![entry(1, init()), entry(2, user("bob"))]).unwrap();
    let built = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let expected = encode_from_file(&db.get()).unwrap().0;
    assert_eq!(built.meta.last_log_id.map(|l| l.index), Some(2));
    assert_eq!(built.meta.snapshot_id, format!("1-2-{}", expected.len()));
    assert_eq!(read_all(*built.snapshot).await, expected);
    assert_eq!(snapshot_files(&db), ["1-2.snap"]);
    assert_eq!(mode(&db.snapshot_dir().join("1-2.snap")), 0o600);
    assert_eq!(mode(&db.snapshot_dir()), 0o700);

    apply_entries(&db, &shared, vec![entry(3, user("carol"))]).unwrap();
    sm.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(snapshot_files(&db), ["1-3.snap"]);
    let current = sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta.last_log_id.map(|l| l.index), Some(3));
    let bytes = read_all(*current.snapshot).await;
    assert_eq!(bytes, encode_state(&shared.read().state).unwrap());
    assert_eq!(
        read_local_meta(&db.get(), SNAPSHOT_BYTES).unwrap(),
        Some((bytes.len() as u64).to_be_bytes().to_vec())
    );
    // A restarted node finds the same snapshot.
    drop((sm, shared));
    drop(db);
    let db = open_database(dir.path()).unwrap();
    prepare_snapshot_dir(&db).unwrap();
    let mut sm = StateMachineStore::open(db.clone(), Default::default()).unwrap();
    let again = sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(read_all(*again.snapshot).await, bytes);
}

/// A snapshot sent in chunks is received into a file and installed from
/// it: the receiver's state is the sender's, and its current snapshot is
/// the file it received, under its own name.
#[tokio::test]
async fn a_received_snapshot_is_installed_from_its_file() {
    use tokio::io::{AsyncSeekExt, AsyncWriteExt};
    let from = tempfile::tempdir().unwrap();
    let db = open_database(from.path()).unwrap();
    let mut sender = StateMachineStore::open(db.clone(), Default::default()).unwrap();
    let shared = sender.shared();
    apply_entries(
        &db,
        &shared,
        vec![
            entry(1, init()),
            entry(2, user("bob")),
            entry(3, user("carol")),
        ],
    )
    .unwrap();
    let built = sender
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let bytes = read_all(*built.snapshot).await;

    let to = tempfile::tempdir().unwrap();
    let db2 = open_database(to.path()).unwrap();
    let mut receiver = StateMachineStore::open(db2.clone(), Default::default()).unwrap();
    // An earlier stream that ended halfway left its file behind.
    let mut stale = receiver.begin_receiving_snapshot().await.unwrap();
    stale.write_all(b"half a snapshot").await.unwrap();
    drop(stale);
    // As openraft writes chunks: in order, seeking when one is sent again.
    let mut file = receiver.begin_receiving_snapshot().await.unwrap();
    let half = bytes.len() / 2;
    file.write_all(&bytes[..half]).await.unwrap();
    file.seek(std::io::SeekFrom::Start(1)).await.unwrap();
    file.write_all(&bytes[1..]).await.unwrap();
    file.shutdown().await.unwrap();
    receiver.install_snapshot(&built.meta, file).await.unwrap();

    let got = receiver.shared();
    assert_eq!(got.read().state.users, shared.read().state.users);
    assert_eq!(got.read().last_applied, shared.read().last_applied);
    assert_eq!(snapshot_files(&db2), ["1-3.snap"]);
    let current = receiver.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, built.meta);
    assert_eq!(read_all(*current.snapshot).await, bytes);
    // What a restart loads is what was installed.
    assert_eq!(
        load_state(&db2.get()).unwrap().state.users,
        shared.read().state.users
    );
}

/// A database of storage format 3 kept its snapshot in a row; a node of
/// this release moves it into its file at start-up, and removes the files
/// a crash left in the snapshot directory.
#[tokio::test]
async fn a_snapshot_inside_an_older_database_moves_to_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_database(dir.path()).unwrap();
    let meta = SnapshotMeta {
        last_log_id: Some(LogId::new(openraft::CommittedLeaderId::new(2, 1), 9)),
        last_membership: Default::default(),
        snapshot_id: "2-9-300".into(),
    };
    let data: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
    let old = enc(&StoredSnapshot {
        meta: meta.clone(),
        data: data.clone(),
    })
    .unwrap();
    db.write_meta(SNAPSHOT, &old).unwrap();
    std::fs::create_dir_all(db.snapshot_dir()).unwrap();
    for stray in ["building.partial", "incoming.partial", "1-1.snap"] {
        std::fs::write(db.snapshot_dir().join(stray), b"left by a crash").unwrap();
    }

    prepare_snapshot_dir(&db).unwrap();
    assert_eq!(snapshot_files(&db), ["2-9.snap"]);
    assert_eq!(read_local_meta(&db.get(), SNAPSHOT).unwrap(), None);
    assert_eq!(
        read_local_meta(&db.get(), SNAPSHOT_BYTES).unwrap(),
        Some(300u64.to_be_bytes().to_vec())
    );
    let mut sm = StateMachineStore::open(db.clone(), Default::default()).unwrap();
    let current = sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, meta);
    assert_eq!(read_all(*current.snapshot).await, data);
    // Once moved, a second start changes nothing.
    prepare_snapshot_dir(&db).unwrap();
    assert_eq!(snapshot_files(&db), ["2-9.snap"]);
}

/// A snapshot is due once the log since the last one is as large as it;
/// a restarted node counts from its stored snapshot's size, not from zero.
#[test]
fn snapshots_are_paced_by_the_log_against_the_last_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_database(dir.path()).unwrap();
    // No snapshot yet: due at once (after `snapshot_every` entries).
    assert!(db.log_outgrew_snapshot());
    db.note_snapshot(100);
    db.note_appended(60);
    assert!(!db.log_outgrew_snapshot());
    db.note_appended(40);
    assert!(db.log_outgrew_snapshot());

    db.write_meta(SNAPSHOT_BYTES, &100u64.to_be_bytes())
        .unwrap();
    drop(db);
    let db = open_database(dir.path()).unwrap();
    assert!(!db.log_outgrew_snapshot());
    db.note_appended(100);
    assert!(db.log_outgrew_snapshot());

    assert!(!db.shred_waits_after(0));
    db.note_deletion(7);
    assert!(db.shred_waits_after(6) && !db.shred_waits_after(7));
}

fn proposal(id: u8, stamp_ms: u64, command: arca_state::Command) -> arca_state::Proposal {
    arca_state::Proposal {
        request: Some(arca_state::RequestKey {
            id: [id; 16],
            fingerprint: [id; 16],
        }),
        stamp_ms,
        command,
    }
}

fn key_record(n: u8) -> KeyRecord {
    KeyRecord::new(
        arca_state::KeyId::from_bytes([n; 16]),
        format!("key {n}"),
        arca_state::KeyUsage::EncryptDecrypt,
        arca_state::KeySpec::SymmetricDefault,
        arca_state::KeyVersion {
            version: 1,
            version_id: format!("v{n}").into(),
            public_key: None,
            wrapped: [vec![1; 39], vec![n]].concat(),
            created_ms: 10,
        },
    )
}

/// A snapshot built from the file's rows is byte for byte the encoding of
/// the state readers hold in memory, and decodes to it.
#[test]
fn a_snapshot_from_the_file_encodes_the_state_in_memory() {
    use arca_state::Command;
    let dir = tempfile::tempdir().unwrap();
    let db = open_database(dir.path()).unwrap();
    let (empty, applied, _) = encode_from_file(&db.get()).unwrap();
    assert_eq!(applied, None);
    assert_eq!(empty, encode_state(&State::default()).unwrap());

    let sm = StateMachineStore::open(db.clone(), Default::default()).unwrap();
    let shared = sm.shared();
    let normal = |index: u64, p: arca_state::Proposal| Entry {
        log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(p),
    };
    let k1 = arca_state::KeyId::from_bytes([1; 16]);
    let entries = vec![
        entry(1, init()),
        normal(2, proposal(2, 1_000, user("bob"))),
        normal(3, proposal(3, 1_001, user("carol"))),
        normal(
            4,
            proposal(4, 1_002, Command::CreateKey { key: key_record(1) }),
        ),
        normal(
            5,
            proposal(5, 1_003, Command::CreateKey { key: key_record(2) }),
        ),
        normal(
            6,
            proposal(
                6,
                1_004,
                Command::CreateAlias {
                    name: "alias/one".into(),
                    key_id: k1,
                    now_ms: 1_004,
                },
            ),
        ),
        normal(
            7,
            proposal(
                7,
                1_005,
                Command::RecordKeyUsage {
                    since_ms: 900,
                    uses: vec![(
                        k1,
                        arca_state::KeyLastUsage {
                            operation: "Encrypt".into(),
                            at_ms: 1_005,
                            request_id: "r-1".into(),
                        },
                    )],
                },
            ),
        ),
    ];
    let (outcomes, _) = apply_entries(&db, &shared, entries).unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| !matches!(o, arca_state::Outcome::Rejected(_))),
        "{outcomes:?}"
    );
    let a = shared.read();
    assert_eq!(a.state.keys.len(), 2);
    assert_eq!(a.state.aliases.len(), 1);
    assert_eq!(a.state.dedup.entries.len(), 6);
    assert_eq!(a.state.key_usage.len(), 1);
    let (from_file, applied, membership) = encode_from_file(&db.get()).unwrap();
    assert_eq!(applied, a.last_applied);
    assert_eq!(membership, a.membership);
    assert_eq!(from_file, encode_state(&a.state).unwrap());
    let back = decode_state(&from_file).unwrap();
    assert_eq!(back.keys, a.state.keys);
    assert_eq!(back.dedup, a.state.dedup);
}
