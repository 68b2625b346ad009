//! The peer protocol as someone on the wire between nodes sees it: a peer
//! request recorded and replayed, or sent to another node, is refused and
//! counted; a forwarded write cannot choose the times the state believes;
//! and the leader audits the writes forwarded to it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use arca_node::network::{unix_now_ms, PATH_FORWARD};
use arca_node::peer_auth::{PeerAuth, RequestId, Route, HEADER};
use arca_node::types::{ForwardRequest, ForwardResponse};
use arca_state::{Command, KeyId, Outcome, Proposal, Rejection};
use arca_system_tests::*;
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(20);
const DAY_S: f64 = 86_400.0;

/// A peer request as it crossed the wire: head and body bytes.
struct Recorded {
    head: String,
    body: Vec<u8>,
    id: RequestId,
}

/// Signs `req` as node `from` would for node `to`, with the crate's own signer.
fn record(
    auth: &PeerAuth,
    cluster: [u8; 16],
    from: u64,
    to: u64,
    seq: u64,
    req: &ForwardRequest,
) -> Recorded {
    let body = postcard::to_allocvec(req).unwrap();
    let route = Route {
        cluster: Some(cluster),
        from: Some(from),
        to: Some(to),
    };
    let now = unix_now_ms();
    let id = RequestId {
        from: Some(from),
        // Like a sender that started just now.
        epoch: now as u64,
        seq,
    };
    let auth = auth.sign("POST", PATH_FORWARD, &route, &id, now, &body);
    let head = format!(
        "POST {PATH_FORWARD} HTTP/1.1\r\nHost: x\r\n{HEADER}: {auth}\r\nContent-Type: application/postcard\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    Recorded { head, body, id }
}

/// Sends the recorded bytes to `addr`; returns status, the answer's
/// signature header and its body.
fn send(addr: &str, r: &Recorded) -> (u16, Option<String>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(r.head.as_bytes()).unwrap();
    s.write_all(&r.body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let body = out[split + 4..].to_vec();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let sig = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(HEADER).then(|| v.trim().to_string())
    });
    (status, sig, body)
}

/// Sends and checks that the answer is the leader's, signed for this request.
fn forward(auth: &PeerAuth, addr: &str, leader_id: u64, r: &Recorded) -> ForwardResponse {
    let (status, sig, body) = send(addr, r);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let head = auth
        .verify_response_head(
            sig.as_deref(),
            &r.id,
            Some(leader_id),
            status,
            Some(body.len() as u64),
            1 << 24,
        )
        .expect("the answer is signed for this request by the leader");
    auth.verify_response_body(&head, &r.id, &body).unwrap();
    postcard::from_bytes(&body).unwrap()
}

fn write(cmd: Command) -> ForwardRequest {
    ForwardRequest::Write(Box::new(Proposal::new(None, cmd)))
}

fn describe(c: &Cluster, via: usize, key: &str) -> serde_json::Value {
    let (status, v) = c.call(via, "TrentService.DescribeKey", &json!({ "KeyId": key }));
    assert_eq!(status, 200, "{v}");
    v["KeyMetadata"].clone()
}

fn cluster_id(c: &Cluster, i: usize) -> [u8; 16] {
    let (_, body) = http_get(&c.nodes[i].api_addr, "/metrics").unwrap();
    let hexid = body
        .lines()
        .find_map(|l| l.strip_prefix("arca_cluster_info{cluster_id=\""))
        .and_then(|rest| rest.split('"').next())
        .expect("the cluster id in /metrics");
    let mut id = [0u8; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hexid[2 * i..2 * i + 2], 16).unwrap();
    }
    id
}

fn refused(c: &Cluster, i: usize, reason: &str) -> i64 {
    c.metric(
        i,
        &format!("arca_peer_refused_total{{reason=\"{reason}\"}}"),
    )
    .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_peer_write_replayed_or_sent_elsewhere_is_refused() {
    let mut c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let follower = (leader + 1) % 3;
    let (leader_id, follower_id) = (c.nodes[leader].id, c.nodes[follower].id);
    let leader_peer = c.nodes[leader].peer_addr.clone();
    let auth = PeerAuth::new(&std::fs::read(&c.secret_file).unwrap()).unwrap();
    let cluster = cluster_id(&c, leader);
    let key = c.new_key(leader).await;
    let key_id: KeyId = key.parse().unwrap();
    assert!(
        refused(&c, leader, "replay") >= 0,
        "the refusal counters are exported"
    );

    // The follower forwards DisableKey to the leader; someone records it.
    let disable = record(
        &auth,
        cluster,
        follower_id,
        leader_id,
        1,
        &write(Command::SetKeyEnabled {
            key_id,
            enabled: false,
        }),
    );
    let r = forward(&auth, &leader_peer, leader_id, &disable);
    assert!(
        matches!(
            r,
            ForwardResponse::Written {
                outcome: Outcome::Applied,
                ..
            }
        ),
        "{r:?}"
    );
    assert_eq!(describe(&c, leader, &key)["KeyState"], "Disabled");
    // An admin enables the key again.
    let (status, v) = c.call(leader, "TrentService.EnableKey", &json!({ "KeyId": key }));
    assert_eq!(status, 200, "{v}");

    // The recorded request, replayed within the clock window: refused,
    // counted, and the key stays enabled. (Counters are compared before and
    // after: nodes of other tests' clusters on this machine may knock on a
    // reused port and be refused too.)
    let replays = refused(&c, leader, "replay");
    let (status, _, body) = send(&leader_peer, &disable);
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).contains("already received"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert!(refused(&c, leader, "replay") > replays);
    assert_eq!(describe(&c, leader, &key)["KeyState"], "Enabled");

    // The same bytes sent to another node (re-targeted): refused there.
    let other = (leader + 2) % 3;
    let targets = refused(&c, other, "target");
    let (status, _, _) = send(&c.nodes[other].peer_addr.clone(), &disable);
    assert_eq!(status, 401);
    assert!(refused(&c, other, "target") > targets);

    // Signed for another cluster (the same secret, say a copy of it): refused.
    let foreign = record(
        &auth,
        [7; 16],
        follower_id,
        leader_id,
        2,
        &write(Command::SetKeyEnabled {
            key_id,
            enabled: false,
        }),
    );
    let clusters = refused(&c, leader, "cluster");
    let (status, _, _) = send(&leader_peer, &foreign);
    assert_eq!(status, 401);
    assert!(refused(&c, leader, "cluster") > clusters);
    assert_eq!(describe(&c, leader, &key)["KeyState"], "Enabled");

    // The leader audits the forwarded write, naming the node that sent it.
    let audit = c.nodes[leader].data_dir.join("audit.jsonl");
    let line = wait_for(
        "the forwarded write in the leader's audit log",
        DEADLINE,
        || {
            let text = std::fs::read_to_string(&audit).unwrap_or_default();
            let found = text
                .lines()
                .find(|l| l.contains("Forwarded:SetKeyEnabled") && l.contains(&key))
                .map(str::to_string);
            async move { found }
        },
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["source"], format!("node:{follower_id}"));
    assert_eq!(v["outcome"], "OK");
    assert_eq!(v["key_id"], key.as_str());
    // Refused requests never reached the state: one record only.
    let text = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("Forwarded:SetKeyEnabled"))
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_forwarded_deletion_cannot_choose_its_date() {
    let mut c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let follower = (leader + 1) % 3;
    let (leader_id, follower_id) = (c.nodes[leader].id, c.nodes[follower].id);
    let leader_peer = c.nodes[leader].peer_addr.clone();
    let auth = PeerAuth::new(&std::fs::read(&c.secret_file).unwrap()).unwrap();
    let cluster = cluster_id(&c, leader);
    let key = c.new_key(leader).await;
    let key_id: KeyId = key.parse().unwrap();

    // A window below the 7-day minimum is refused by apply.
    let short = record(
        &auth,
        cluster,
        follower_id,
        leader_id,
        1,
        &write(Command::ScheduleKeyDeletion {
            key_id,
            window_days: 1,
        }),
    );
    let r = forward(&auth, &leader_peer, leader_id, &short);
    assert!(
        matches!(
            r,
            ForwardResponse::Written {
                outcome: Outcome::Rejected(Rejection::Invalid(_)),
                ..
            }
        ),
        "{r:?}"
    );
    assert_eq!(describe(&c, leader, &key)["KeyState"], "Enabled");

    // The attack as it was seen: a deletion date of 0, then a purge "at the
    // end of time". The date becomes the leader's time plus the window.
    let before = unix_now_ms() as f64 / 1000.0;
    let zero = record(
        &auth,
        cluster,
        follower_id,
        leader_id,
        2,
        &write(Command::ScheduleDeletion {
            key_id,
            deletion_ms: 0,
            window_days: 7,
        }),
    );
    let r = forward(&auth, &leader_peer, leader_id, &zero);
    assert!(
        matches!(
            r,
            ForwardResponse::Written {
                outcome: Outcome::Applied,
                ..
            }
        ),
        "{r:?}"
    );
    let m = describe(&c, leader, &key);
    assert_eq!(m["KeyState"], "PendingDeletion");
    let date = m["DeletionDate"].as_f64().unwrap();
    assert!(date >= before + 7.0 * DAY_S - 1.0, "{date} vs {before}");
    let purge = record(
        &auth,
        cluster,
        follower_id,
        leader_id,
        3,
        &write(Command::DeleteKey {
            key_id,
            now_ms: u64::MAX,
        }),
    );
    let r = forward(&auth, &leader_peer, leader_id, &purge);
    assert!(
        matches!(
            r,
            ForwardResponse::Written {
                outcome: Outcome::Rejected(Rejection::NotDue(_)),
                ..
            }
        ),
        "{r:?}"
    );
    // The key is still there, on every node.
    for n in 0..3 {
        assert_eq!(describe(&c, n, &key)["KeyState"], "PendingDeletion");
    }
}

/// Points node `i`'s config at the cluster secret it signs with and the
/// further ones it accepts.
fn set_cluster_secrets(c: &Cluster, i: usize, sign: &std::path::Path, accept: &[&std::path::Path]) {
    let path = &c.nodes[i].config;
    let text = std::fs::read_to_string(path).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            !l.starts_with("cluster_secret_file") && !l.starts_with("cluster_secret_accept_files")
        })
        .collect();
    let list = accept
        .iter()
        .map(|f| format!("{:?}", f.display().to_string()))
        .collect::<Vec<_>>()
        .join(", ");
    // Top-level keys go before the first section.
    let mut out = format!(
        "cluster_secret_file = {:?}\ncluster_secret_accept_files = [{list}]\n",
        sign.display().to_string()
    );
    out.push_str(&kept.join("\n"));
    out.push('\n');
    std::fs::write(path, out).unwrap();
}

/// A write through every node: followers forward it to the leader over the
/// peer port, so it succeeds only if the nodes accept each other's MACs.
async fn write_through_every_node(c: &Cluster, key: &str, step: &str) {
    for i in 0..c.nodes.len() {
        let (status, v) = c.call(
            i,
            "TrentService.UpdateKeyDescription",
            &json!({ "KeyId": key, "Description": format!("{step}, via node {}", i + 1) }),
        );
        assert_eq!(status, 200, "{step}, via node {}: {v}", i + 1);
    }
}

/// The cluster secret rotates with rolling restarts and no outage: first
/// every node also accepts the new secret, then signs with it (accepting
/// the old), then holds only the new one. After each single restart the
/// nodes still forward to each other. A node left on the old secret alone
/// is then refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_secret_rotates_online() {
    let mut c = Cluster::start(3).await;
    c.wait_leader().await;
    let key = c.new_key(0).await;
    let old = c.secret_file.clone();
    let new = c.dir.path().join("cluster-2.secret");
    c.cli(&["cluster-secret", "--out", new.to_str().unwrap()]);
    let steps: [(&str, &std::path::Path, Vec<&std::path::Path>); 3] = [
        ("step 1: the new secret accepted", &old, vec![&new]),
        ("step 2: signing with the new secret", &new, vec![&old]),
        ("step 3: the old secret retired", &new, vec![]),
    ];
    for (step, sign, accept) in &steps {
        for i in 0..3 {
            set_cluster_secrets(&c, i, sign, accept);
            c.nodes[i].stop();
            c.start_node(i);
            c.wait_healthy(i).await;
            c.wait_leader().await;
            c.wait_ready(i).await;
            write_through_every_node(&c, &key, step).await;
        }
    }
    // A node that still holds only the old secret is refused by the others:
    // it never hears from a leader and cannot serve.
    let refused_before = (0..3)
        .filter(|j| *j != 2)
        .map(|j| refused(&c, j, "signature"))
        .sum::<i64>();
    set_cluster_secrets(&c, 2, &old, &[]);
    c.nodes[2].stop();
    c.start_node(2);
    c.wait_healthy(2).await;
    wait_for("the others to refuse the old secret", DEADLINE, || {
        let n = (0..3)
            .filter(|j| *j != 2)
            .map(|j| refused(&c, j, "signature"))
            .sum::<i64>();
        async move { (n > refused_before).then_some(()) }
    })
    .await;
    let (status, _) = c.call(
        2,
        "TrentService.UpdateKeyDescription",
        &json!({ "KeyId": key, "Description": "from the node with the old secret" }),
    );
    assert_ne!(status, 200);
}
