//! Kafka transactions on the real broker: what the hub's and connectors' exactly-once
//! guarantees rest on.

use std::collections::BTreeSet;
use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use schemas::{TopicKind, TopicSpec};
use tests::{TIMEOUT, create_topics, settings, unique};

/// Reads a one-partition topic from the start to its end and returns the payloads.
fn read_all(topic: &str, isolation: &str) -> Vec<String> {
    let consumer: BaseConsumer = settings()
        .client_config()
        .set("group.id", unique("reader"))
        .set("isolation.level", isolation)
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .expect("creating consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("assigning partition");
    consumer.assign(&assignment).expect("assigning partition");

    let started = Instant::now();
    let mut payloads = Vec::new();
    loop {
        assert!(started.elapsed() < TIMEOUT, "timed out reading {topic}");
        match consumer.poll(TIMEOUT) {
            Some(Ok(msg)) => payloads
                .push(String::from_utf8(msg.payload().expect("payload").to_vec()).expect("utf-8")),
            Some(Err(KafkaError::PartitionEOF(_))) => return payloads,
            Some(Err(e)) => panic!("consuming {topic}: {e}"),
            None => {}
        }
    }
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
