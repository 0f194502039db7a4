//! Kafka transactions on the real broker: what the hub's and connectors' exactly-once
//! guarantees rest on.

use std::collections::BTreeSet;

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use schemas::{TopicKind, TopicSpec};
use tests::{TIMEOUT, create_topics, read_partition, settings, unique};

/// Reads a one-partition topic from the start to its end and returns the payloads as text.
fn read_all(topic: &str, isolation: &str) -> Vec<String> {
    read_partition(topic, isolation)
        .into_iter()
        .map(|(_, payload)| String::from_utf8(payload.expect("payload")).expect("utf-8"))
        .collect()
}

fn send_batch(producer: &BaseProducer, topic: &str, label: &str, n: usize) {
    for i in 0..n {
        let payload = format!("{label}-{i}");
        let key = i.to_string();
        producer
            .send(BaseRecord::to(topic).key(&key).payload(&payload))
            .map_err(|(e, _)| e)
            .expect("enqueueing record");
    }
}

#[test]
fn read_committed_sees_committed_batch_and_not_aborted_one() {
    let topic = unique("txn");
    create_topics(&[TopicSpec {
        name: topic.clone(),
        kind: TopicKind::Raw,
        partitions: 1,
    }]);

    let producer: BaseProducer = settings()
        .client_config()
        .set("transactional.id", unique("txn-producer"))
        .create()
        .expect("creating transactional producer");
    producer
        .init_transactions(TIMEOUT)
        .expect("init_transactions");

    producer.begin_transaction().expect("begin committed batch");
    send_batch(&producer, &topic, "committed", 10);
    producer.commit_transaction(TIMEOUT).expect("commit");

    producer.begin_transaction().expect("begin aborted batch");
    send_batch(&producer, &topic, "aborted", 10);
    producer
        .flush(TIMEOUT)
        .expect("flush aborted batch to the broker");
    producer.abort_transaction(TIMEOUT).expect("abort");

    let committed = read_all(&topic, "read_committed");
    let expected: Vec<String> = (0..10).map(|i| format!("committed-{i}")).collect();
    assert_eq!(
        committed, expected,
        "read_committed must see exactly the committed batch"
    );

    // The aborted batch did reach the log: an uncommitted reader sees it, which proves the
    // committed reader filtered it rather than it never having been written.
    let uncommitted: BTreeSet<String> = read_all(&topic, "read_uncommitted").into_iter().collect();
    assert!(
        uncommitted.contains("aborted-0"),
        "aborted records were written"
    );
    assert_eq!(uncommitted.len(), 20);
}
