//! The `connector` binary's checks and their exit codes, as scripts and deploy pipelines use
//! them: `validate` gives 0 for a good file and 1 with `file:line: field: message` for a bad
//! one; `check` gives 0 when the raw topics exist and 2 when the cluster does not answer.

use std::process::Command;

use simulator::connector_config::instances_toml;
use simulator::{Simulator, Size, World};
use tests::{binary, unique};

/// The simulator's configuration for every system it serves, as `ops/dev up` runs it.
fn generated() -> String {
    let sim = Simulator::new(World::new(7, Size::Tiny));
    format!(
        "connector_id = \"cli\"\nregistry_url = \"http://127.0.0.1:9644\"\n[kafka]\n\
         bootstrap = \"127.0.0.1:9092\"\n{}",
        instances_toml(sim.systems(), "http://127.0.0.1:1")
    )
}

/// Runs `connector <args>`: exit code, stdout and stderr.
fn connector(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(binary("connector"))
        .args(args)
        .env_remove("CONNECTOR_CONFIG")
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_and_check_answer_with_their_exit_codes() {
    let dir = std::env::temp_dir().join(unique("cli"));
    std::fs::create_dir_all(&dir).expect("folder");
    let good = dir.join("good.toml");
    std::fs::write(&good, generated()).expect("write");
    let (code, stdout, stderr) =
        connector(&["validate", "--config", good.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("valid ("), "{stdout}");

    // A target the raw schema lacks, on a line the message names.
    let text = generated();
    let bad_text = text.replacen("fields = { ", "fields = { colour = \"颜色\", ", 1);
    let line = bad_text[..bad_text.find("colour").expect("inserted")]
        .matches('\n')
        .count()
        + 1;
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, &bad_text).expect("write");
    let (code, stdout, stderr) = connector(&["validate", "--config", bad.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "bad.toml:{line}: instance[0].mapping.fields.colour: "
        )),
        "{stdout}"
    );

    // Not TOML the connector takes: 1, naming line and column.
    std::fs::write(&bad, "connector_id = \n").expect("write");
    let (code, _, stderr) = connector(&["validate", "--config", bad.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("bad.toml:1:"), "{stderr}");

    let (code, stdout, stderr) = connector(&["check", "--bootstrap", &tests::bootstrap()]);
    assert!(
        code == 0 || code == 1,
        "the broker answers: {stdout}{stderr}"
    );
    // Nothing listens on port 1.
    let (code, _, stderr) = connector(&["check", "--bootstrap", "127.0.0.1:1"]);
    assert_eq!(code, 2, "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
