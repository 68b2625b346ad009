//! What may run together: a node refuses a data directory written in a
//! newer storage format, with a message that says so, and leaves it as it
//! was; the same directory in this release's format starts.

use arca_system_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_of_a_newer_format_is_refused() {
    let mut c = Cluster::start(1).await;
    c.wait_leader().await;
    let key = c.new_key(0).await;
    c.nodes[0].stop();

    // A copy of the data directory, marked as written by a newer release.
    let data = c.nodes[0].data_dir.clone();
    let copy = c.dir.path().join("node1/data-newer");
    std::fs::create_dir_all(&copy).unwrap();
    for f in files_under(&data) {
        std::fs::copy(&f, copy.join(f.file_name().unwrap())).unwrap();
    }
    let newer = arca_node::store::FORMAT_VERSION + 1;
    arca_node::store::set_format_version(&copy, newer).unwrap();
    let config = c.nodes[0].config.clone();
    let original = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        original.replace(
            &format!("data_dir = \"{}\"", data.display()),
            &format!("data_dir = \"{}\"", copy.display()),
        ),
    )
    .unwrap();
    c.start_node(0);
    let proc = &mut c.nodes[0];
    wait_for("the node to refuse the data directory", DEADLINE, || {
        let running = proc.is_running();
        async move { (!running).then_some(()) }
    })
    .await;
    let log = c.nodes[0].log_text();
    assert!(
        log.contains(&format!(
            "is in storage format {newer}, written by a newer release"
        )),
        "{log}"
    );
    let state = arca_node::store::offline_state(&copy).unwrap();
    assert_eq!(
        state.keys.len(),
        1,
        "the refused directory is left as it was"
    );

    // The original directory (this release's format) starts and serves.
    std::fs::write(&config, original).unwrap();
    c.start_node(0);
    c.wait_healthy(0).await;
    c.wait_leader().await;
    c.wait_ready(0).await;
    let d = c
        .client(0)
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(d.key_metadata().unwrap().key_id(), key);
}
