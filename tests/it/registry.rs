//! The hub's Schema Registry over HTTP, on the real broker: Confluent's API and error shapes,
//! replicas sharing one topic and one transactional id, restarts.

use std::collections::{BTreeMap, BTreeSet};

use hub::registry::{RegistryConfig, RegistrySnapshot, SchemaRegistry};
use serde_json::{Value, json};
use tests::{TIMEOUT, settings, unique};
use tokio::sync::oneshot;

/// One registry instance serving its API on a random local port.
struct Instance {
    registry: SchemaRegistry,
    url: String,
    http: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

impl Instance {
    /// Starts an instance over `topic` with writer `transactional_id` and waits until ready.
    async fn start(topic: &str, transactional_id: &str) -> Instance {
        let metrics = telemetry::registry("it").expect("metrics registry");
        let config = RegistryConfig {
            topic: topic.to_owned(),
            transactional_id: transactional_id.to_owned(),
            ..RegistryConfig::default()
        };
        let registry = SchemaRegistry::start(&settings(), config, &metrics)
            .await
            .expect("starting the registry");
        registry.wait_ready(TIMEOUT).await.expect("registry ready");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a local port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(registry.clone().serve(listener, async {
            let _ = stopped.await;
        }));
        Instance {
            registry,
            url,
            http: reqwest::Client::new(),
            _stop: stop,
        }
    }

    /// A fresh topic and transactional id.
    async fn fresh() -> Instance {
        Instance::start(&unique("schemas"), &unique("registry-tx")).await
    }

    /// Sends a request; returns the status and the JSON body (`Null` when empty).
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .timeout(TIMEOUT);
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/vnd.schemaregistry.v1+json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let text = response.text().await.expect("response body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }

    async fn register(&self, subject: &str, schema: &str) -> (u16, Value) {
        self.call(
            "POST",
            &format!("/subjects/{subject}/versions"),
            Some(json!({ "schema": schema })),
        )
        .await
    }

    /// Registers and returns the id, failing the test on an error.
    async fn id(&self, subject: &str, schema: &str) -> u64 {
        let (status, body) = self.register(subject, schema).await;
        assert_eq!(status, 200, "registering under {subject}: {body}");
        body["id"].as_u64().expect("id in the answer")
    }

    /// Subject → (version → id) of live versions, through the API.
    async fn subject_ids(&self) -> BTreeMap<String, BTreeMap<u64, u64>> {
        let (_, subjects) = self.get("/subjects").await;
        let mut out = BTreeMap::new();
        for subject in subjects.as_array().expect("subject list") {
            let subject = subject.as_str().expect("subject name");
            let (_, versions) = self.get(&format!("/subjects/{subject}/versions")).await;
            let mut ids = BTreeMap::new();
            for version in versions.as_array().expect("version list") {
                let version = version.as_u64().expect("version number");
                let (_, found) = self
                    .get(&format!("/subjects/{subject}/versions/{version}"))
                    .await;
                ids.insert(version, found["id"].as_u64().expect("id"));
            }
            out.insert(subject.to_owned(), ids);
        }
        out
    }

    async fn snapshot(&self) -> RegistrySnapshot {
        self.registry.catch_up().await.expect("catching up");
        self.registry.snapshot()
    }
}

/// A record schema `name` with `fields` (JSON text of the field list).
fn record(name: &str, fields: &str) -> String {
    format!(
        r#"{{"type":"record","name":"{name}","namespace":"cn.gov.huitong.it","fields":[{fields}]}}"#
    )
}

const ID: &str = r#"{"name":"id","type":"string"}"#;
const AMOUNT_WITH_DEFAULT: &str = r#"{"name":"amount","type":"long","default":0}"#;
const AMOUNT_REQUIRED: &str = r#"{"name":"amount","type":"long"}"#;

fn assert_error(answer: &(u16, Value), status: u16, code: u64) {
    let (s, body) = answer;
    assert_eq!(*s, status, "{body}");
    assert_eq!(body["error_code"].as_u64(), Some(code), "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_reads_and_looks_up_like_confluent() {
    let r = Instance::fresh().await;
    let v1 = record("Vehicle", ID);
    let v2 = record("Vehicle", &format!("{ID},{AMOUNT_WITH_DEFAULT}"));

    let id1 = r.id("vehicle-value", &v1).await;
    assert_eq!(
        r.id("vehicle-value", &v1).await,
        id1,
        "same schema, same id"
    );
    // Same schema, differently formatted, under another subject: the same global id.
    let reformatted =
        serde_json::to_string_pretty(&serde_json::from_str::<Value>(&v1).unwrap()).unwrap();
    assert_eq!(r.id("fleet-value", &reformatted).await, id1);
    let id2 = r.id("vehicle-value", &v2).await;
    assert_ne!(id2, id1, "a new schema gets a new id");

    // Reads.
    assert_eq!(
        r.get(&format!("/schemas/ids/{id1}")).await,
        (200, json!({ "schema": v1 }))
    );
    assert_eq!(
        r.get(&format!("/schemas/ids/{id1}/versions")).await,
        (
            200,
            json!([
                { "subject": "fleet-value", "version": 1 },
                { "subject": "vehicle-value", "version": 1 }
            ])
        )
    );
    assert_eq!(
        r.get("/subjects").await,
        (200, json!(["fleet-value", "vehicle-value"]))
    );
    assert_eq!(
        r.get("/subjects/vehicle-value/versions").await,
        (200, json!([1, 2]))
    );
    let latest = json!({ "subject": "vehicle-value", "version": 2, "id": id2, "schema": v2 });
    assert_eq!(
        r.get("/subjects/vehicle-value/versions/latest").await,
        (200, latest.clone())
    );
    assert_eq!(
        r.get("/subjects/vehicle-value/versions/2").await,
        (200, latest)
    );
    let (status, raw) = r.get("/subjects/vehicle-value/versions/1/schema").await;
    assert_eq!(
        (status, raw),
        (200, serde_json::from_str::<Value>(&v1).unwrap())
    );
    // The registered text comes back unchanged.
    assert_eq!(
        r.get("/subjects/fleet-value/versions/1").await.1["schema"],
        json!(reformatted)
    );

    // Lookup.
    let (status, found) = r
        .call(
            "POST",
            "/subjects/vehicle-value",
            Some(json!({ "schema": v1 })),
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        (found["id"].as_u64(), found["version"].as_u64()),
        (Some(id1), Some(1))
    );
    let unknown = record("Vehicle", r#"{"name":"other","type":"int"}"#);
    assert_error(
        &r.call(
            "POST",
            "/subjects/vehicle-value",
            Some(json!({ "schema": unknown })),
        )
        .await,
        404,
        40403,
    );

    // Not found.
    assert_error(&r.get("/subjects/nobody/versions").await, 404, 40401);
    assert_error(&r.get("/subjects/nobody/versions/1").await, 404, 40401);
    assert_error(
        &r.get("/subjects/vehicle-value/versions/9").await,
        404,
        40402,
    );
    assert_error(&r.get("/schemas/ids/999999").await, 404, 40403);
    assert_error(
        &r.call("POST", "/subjects/nobody", Some(json!({ "schema": v1 })))
            .await,
        404,
        40401,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforces_compatibility_and_config() {
    let r = Instance::fresh().await;
    let v1 = record("Cost", &format!("{ID},{AMOUNT_WITH_DEFAULT}"));
    let removed_default = record("Cost", &format!("{ID},{AMOUNT_REQUIRED}"));
    let changed_type = record(
        "Cost",
        &format!(r#"{ID},{{"name":"amount","type":"string"}}"#),
    );
    r.id("cost-value", &v1).await;

    assert_eq!(
        r.get("/config").await,
        (200, json!({ "compatibilityLevel": "BACKWARD_TRANSITIVE" }))
    );
    // Changing a field's type breaks the default BACKWARD_TRANSITIVE.
    let (status, body) = r.register("cost-value", &changed_type).await;
    assert_eq!(
        (status, body["error_code"].as_u64()),
        (409, Some(409)),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("amount"),
        "{body}"
    );

    // Removing a default: the new schema reads version 2's data but not version 1's, which
    // has no `amount`; transitive checks catch it.
    r.id("chain-value", &record("Cost", ID)).await;
    r.id("chain-value", &v1).await;
    assert_error(&r.register("chain-value", &removed_default).await, 409, 409);

    // Compatibility endpoint.
    let (status, body) = r
        .call(
            "POST",
            "/compatibility/subjects/chain-value/versions/latest?verbose=true",
            Some(json!({ "schema": changed_type })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["is_compatible"], json!(false));
    assert!(!body["messages"].as_array().unwrap().is_empty(), "{body}");
    let next = record(
        "Cost",
        &format!(
            r#"{ID},{AMOUNT_WITH_DEFAULT},{{"name":"note","type":["null","string"],"default":null}}"#
        ),
    );
    assert_eq!(
        r.call(
            "POST",
            "/compatibility/subjects/chain-value/versions/1",
            Some(json!({ "schema": next })),
        )
        .await,
        (200, json!({ "is_compatible": true }))
    );
    assert_error(
        &r.call(
            "POST",
            "/compatibility/subjects/chain-value/versions/7",
            Some(json!({ "schema": next })),
        )
        .await,
        404,
        40402,
    );

    // Per-subject NONE lets an incompatible schema in; other subjects keep the global level.
    assert_error(&r.get("/config/chain-value").await, 404, 40408);
    assert_eq!(
        r.call(
            "PUT",
            "/config/chain-value",
            Some(json!({ "compatibility": "NONE" }))
        )
        .await,
        (200, json!({ "compatibility": "NONE" }))
    );
    assert_eq!(
        r.get("/config/chain-value").await,
        (200, json!({ "compatibilityLevel": "NONE" }))
    );
    assert_eq!(
        r.get("/config/cost-value?defaultToGlobal=true").await,
        (200, json!({ "compatibilityLevel": "BACKWARD_TRANSITIVE" }))
    );
    let (status, body) = r.register("chain-value", &changed_type).await;
    assert_eq!(status, 200, "{body}");
    assert_error(&r.register("cost-value", &changed_type).await, 409, 409);

    // Global level.
    assert_eq!(
        r.call("PUT", "/config", Some(json!({ "compatibility": "FULL" })))
            .await,
        (200, json!({ "compatibility": "FULL" }))
    );
    assert_eq!(
        r.get("/config").await,
        (200, json!({ "compatibilityLevel": "FULL" }))
    );
    assert_error(
        &r.call(
            "PUT",
            "/config",
            Some(json!({ "compatibility": "SIDEWAYS" })),
        )
        .await,
        422,
        42203,
    );
    // FULL: adding a field with a default is fine both ways.
    r.id("cost-value", &next).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_softly_then_permanently() {
    let r = Instance::fresh().await;
    let v1 = record("Asset", ID);
    let v2 = record("Asset", &format!("{ID},{AMOUNT_WITH_DEFAULT}"));
    let id1 = r.id("asset-value", &v1).await;
    let id2 = r.id("asset-value", &v2).await;

    // A permanent delete needs a soft delete first.
    assert_error(
        &r.call(
            "DELETE",
            "/subjects/asset-value/versions/2?permanent=true",
            None,
        )
        .await,
        404,
        40407,
    );
    assert_eq!(
        r.call("DELETE", "/subjects/asset-value/versions/2", None)
            .await,
        (200, json!(2))
    );
    assert_error(
        &r.call("DELETE", "/subjects/asset-value/versions/2", None)
            .await,
        404,
        40406,
    );
    assert_eq!(
        r.get("/subjects/asset-value/versions").await,
        (200, json!([1]))
    );
    assert_eq!(
        r.get("/subjects/asset-value/versions?deleted=true").await,
        (200, json!([1, 2]))
    );
    assert_error(&r.get("/subjects/asset-value/versions/2").await, 404, 40402);
    // Soft-deleted schemas stay readable by id: consumers may still meet them.
    assert_eq!(r.get(&format!("/schemas/ids/{id2}")).await.0, 200);
    assert_eq!(
        r.call(
            "DELETE",
            "/subjects/asset-value/versions/2?permanent=true",
            None
        )
        .await,
        (200, json!(2))
    );
    assert_error(&r.get(&format!("/schemas/ids/{id2}")).await, 404, 40403);

    // Whole subject.
    assert_error(
        &r.call("DELETE", "/subjects/asset-value?permanent=true", None)
            .await,
        404,
        40405,
    );
    assert_eq!(
        r.call("DELETE", "/subjects/asset-value", None).await,
        (200, json!([1]))
    );
    assert_error(
        &r.call("DELETE", "/subjects/asset-value", None).await,
        404,
        40404,
    );
    assert_eq!(r.get("/subjects").await, (200, json!([])));
    assert_eq!(
        r.get("/subjects?deleted=true").await,
        (200, json!(["asset-value"]))
    );
    assert_eq!(
        r.call("DELETE", "/subjects/asset-value?permanent=true", None)
            .await,
        (200, json!([1]))
    );
    assert_error(&r.get(&format!("/schemas/ids/{id1}")).await, 404, 40403);
    assert_error(
        &r.call("DELETE", "/subjects/asset-value", None).await,
        404,
        40401,
    );

    // Ids are never reused, even after a permanent delete.
    let v3 = record("Asset", r#"{"name":"code","type":"string"}"#);
    let id3 = r.id("asset-value", &v3).await;
    assert!(id3 > id2, "id {id3} reused (max so far {id2})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_confluent_errors() {
    let r = Instance::fresh().await;
    let post = |path: &'static str, body: &'static str| {
        let http = r.http.clone();
        let url = format!("{}{path}", r.url);
        async move {
            let response = http
                .post(url)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .expect("request sent");
            let status = response.status().as_u16();
            let body: Value = response.json().await.expect("JSON error body");
            (status, body)
        }
    };
    assert_error(&post("/subjects/s/versions", "{not json").await, 400, 400);
    assert_error(
        &post("/subjects/s/versions", r#"{"schema": 5}"#).await,
        422,
        422,
    );
    assert_error(&post("/subjects/s/versions", r#"{}"#).await, 422, 42201);
    assert_error(
        &post(
            "/subjects/s/versions",
            r#"{"schema": "{\"type\":\"nope\"}"}"#,
        )
        .await,
        422,
        42201,
    );
    assert_error(
        &post(
            "/subjects/s/versions",
            r#"{"schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF"}"#,
        )
        .await,
        422,
        42201,
    );
    assert_error(&r.get("/subjects/s/versions/zero").await, 422, 42202);
    assert_error(&r.get("/subjects/s/versions/0").await, 422, 42202);
    assert_error(&r.get("/schemas/ids/not-a-number").await, 404, 40403);
    assert_error(&r.get("/subjects?deleted=perhaps").await, 400, 400);
    assert_error(&r.get("/no/such/endpoint").await, 404, 404);
    assert_error(&r.call("PUT", "/subjects", None).await, 405, 405);
    // Nothing was registered by any of it.
    assert_eq!(r.get("/subjects?deleted=true").await, (200, json!([])));
}

/// Two replicas over one topic and one transactional id, registering at the same time: the
/// same ten subjects through both, plus five subjects of each replica's own (writes that
/// really race). One id per distinct schema, identical state everywhere, and a replica
/// started afterwards reads the same state from the topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_agree_under_concurrent_writes() {
    let topic = unique("schemas");
    let transactional_id = unique("registry-tx");
    let a = Instance::start(&topic, &transactional_id).await;
    let b = Instance::start(&topic, &transactional_id).await;

    // Five distinct schemas; subject `…-i-…` carries schema i % 5.
    let schema = |i: usize| record(&format!("Report{}", i % 5), ID);
    let shared: Vec<(String, usize)> = (0..10).map(|i| (format!("report-{i}-value"), i)).collect();
    let own = |replica: &str| -> Vec<(String, usize)> {
        (0..5)
            .map(|i| (format!("{replica}-{i}-value"), i))
            .collect()
    };

    let register_all = |instance: &Instance, subjects: Vec<(String, usize)>| {
        subjects
            .into_iter()
            .map(|(subject, i)| {
                let http = instance.http.clone();
                let url = format!("{}/subjects/{subject}/versions", instance.url);
                let body = json!({ "schema": schema(i) }).to_string();
                tokio::spawn(async move {
                    let response = http
                        .post(url)
                        .header("Content-Type", "application/vnd.schemaregistry.v1+json")
                        .body(body)
                        .timeout(TIMEOUT * 2)
                        .send()
                        .await
                        .expect("request sent");
                    let status = response.status().as_u16();
                    let body: Value = response.json().await.expect("JSON body");
                    assert_eq!(status, 200, "{subject}: {body}");
                    (subject, i % 5, body["id"].as_u64().expect("id"))
                })
            })
            .collect::<Vec<_>>()
    };
    let mut jobs = register_all(&a, shared.clone());
    jobs.extend(register_all(&b, shared));
    jobs.extend(register_all(&a, own("only-a")));
    jobs.extend(register_all(&b, own("only-b")));
    let mut ids_by_subject: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let mut ids_by_schema: BTreeMap<usize, BTreeSet<u64>> = BTreeMap::new();
    for job in jobs {
        let (subject, schema, id) = job.await.expect("registration task");
        ids_by_subject.entry(subject).or_default().insert(id);
        ids_by_schema.entry(schema).or_default().insert(id);
    }

    // Both answers for a subject agree; equal schemas share one id, distinct ones don't.
    assert_eq!(ids_by_subject.len(), 20);
    assert!(
        ids_by_subject.values().all(|ids| ids.len() == 1),
        "{ids_by_subject:?}"
    );
    assert!(
        ids_by_schema.values().all(|ids| ids.len() == 1),
        "{ids_by_schema:?}"
    );
    let distinct: BTreeSet<u64> = ids_by_schema.values().flatten().copied().collect();
    assert_eq!(distinct.len(), 5, "{ids_by_schema:?}");

    // Every subject has exactly one version, and both replicas say so. Listings are served
    // from each replica's applied state, which may trail the other replica's last write by
    // milliseconds: catch both up first.
    a.registry.catch_up().await.expect("replica a catches up");
    b.registry.catch_up().await.expect("replica b catches up");
    let from_a = a.subject_ids().await;
    assert_eq!(from_a.len(), 20, "{from_a:?}");
    assert!(
        from_a.values().all(|versions| versions.len() == 1),
        "{from_a:?}"
    );
    assert_eq!(b.subject_ids().await, from_a);
    let snapshot = a.snapshot().await;
    assert_eq!(b.snapshot().await, snapshot);
    assert_eq!(
        snapshot.max_id, 5,
        "ids are dense: no id was assigned twice"
    );

    // A replica reading the topic from scratch.
    let c = Instance::start(&topic, &transactional_id).await;
    assert_eq!(c.registry.snapshot(), snapshot);
    assert_eq!(c.subject_ids().await, from_a);

    // Read-your-writes across replicas: once a registration is answered, every replica finds
    // it at once (a miss makes the replica catch up with the log first).
    for i in 0..5 {
        let subject = format!("late-{i}-value");
        let id = a.id(&subject, &record(&format!("Late{i}"), ID)).await;
        let (status, body) = b.get(&format!("/schemas/ids/{id}")).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = c.get(&format!("/subjects/{subject}/versions/latest")).await;
        assert_eq!((status, body["id"].as_u64()), (200, Some(id)), "{body}");
    }
}

/// A new instance on an existing topic restores everything, and keeps allocating fresh ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_restores_state() {
    let topic = unique("schemas");
    let transactional_id = unique("registry-tx");
    let first = Instance::start(&topic, &transactional_id).await;
    let v1 = record("Building", ID);
    let v2 = record("Building", &format!("{ID},{AMOUNT_WITH_DEFAULT}"));
    let other = record("Room", ID);
    first.id("building-value", &v1).await;
    first.id("building-value", &v2).await;
    let room = first.id("room-value", &other).await;
    first
        .call(
            "PUT",
            "/config/room-value",
            Some(json!({ "compatibility": "FULL" })),
        )
        .await;
    first
        .call(
            "PUT",
            "/config",
            Some(json!({ "compatibility": "FORWARD" })),
        )
        .await;
    first
        .call("DELETE", "/subjects/room-value/versions/1", None)
        .await;
    first
        .call(
            "DELETE",
            "/subjects/room-value/versions/1?permanent=true",
            None,
        )
        .await;
    let before = first.snapshot().await;
    let before_api = first.subject_ids().await;
    first.registry.shutdown().await;
    drop(first);

    let second = Instance::start(&topic, &transactional_id).await;
    assert_eq!(second.registry.snapshot(), before);
    assert_eq!(second.subject_ids().await, before_api);
    assert_eq!(
        second.get("/config").await,
        (200, json!({ "compatibilityLevel": "FORWARD" }))
    );
    assert_eq!(
        second.get("/config/room-value").await,
        (200, json!({ "compatibilityLevel": "FULL" }))
    );
    // The hard-deleted id is not handed out again.
    let next = second
        .id(
            "room-value",
            &record("Room", r#"{"name":"floor","type":"int"}"#),
        )
        .await;
    assert!(next > room, "id {next} after {room}");
}
