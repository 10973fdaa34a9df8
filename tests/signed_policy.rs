//! Signed policies end to end: `vigil-reporter policy publish` signs a policy
//! with the reporter's policy key while the reporter runs; an agent enrolled
//! with that reporter pinned the key and runs the policy. A policy slipped
//! into the reporter's store without a valid signature (as an attacker with
//! write access to the database would) is refused by the running agent, which
//! keeps running the previous one and says so in its reports; the next
//! properly published policy is taken.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use vigil_tests::*;

fn publish(data: &Path, file: &Path) {
    let o = Command::new(binary("vigil-reporter", "vigil-reporter"))
        .args(["policy", "publish"])
        .arg(file)
        .arg("--data")
        .arg(data)
        .args(["--by", "alice"])
        .env("VIGIL_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "policy publish: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("published policy `daemon-test`"));
}

fn version(text: &str, v: &str) -> String {
    text.replace("version: \"1\"", &format!("version: \"{v}\""))
}

#[test]
fn a_forged_policy_is_refused_and_the_last_good_one_keeps_running() {
    let python = require_tool("python3", "python3");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let r = Reporter::start(&data, false, None, &[]);
    let staff = r.add_user("alice", "auditor");
    let base = std::fs::read_to_string(workspace().join("tests/data/daemon/policy.yaml")).unwrap();
    let v1 = dir.path().join("v1.yaml");
    std::fs::write(&v1, version(&base, "1")).unwrap();
    publish(&data, &v1);

    let mut agent = DaemonAgent::new("signed-1", &r.base, "");
    let o = agent.enroll(ENROLL_SECRET);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let key = std::fs::read_to_string(
        agent
            .dir
            .path()
            .join("state/checks/reporter-policy-key.pub"),
    )
    .expect("enrollment pins the policy key");
    assert_eq!(key.trim().len(), 44);
    agent.start(&[]);

    let ran = |v: &'static str| move |rep: &Value| rep["policy"]["version"] == v;
    let mut last = Value::Null;
    wait_until(60, "a report under policy version 1", || {
        last = r.newest_report(&staff, "signed-1").unwrap_or_default();
        ran("1")(&last)
    });
    assert!(last["agent"]["policy_refused"].is_null(), "{last:#}");

    // A forged policy: valid YAML, its digest right, the signature of v1.
    let forged = version(&base, "666");
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(forged.as_bytes()))
    };
    let script = "import sqlite3,sys,time\nc=sqlite3.connect(sys.argv[1])\nsig=c.execute('SELECT signature FROM policies ORDER BY published_at DESC LIMIT 1').fetchone()[0]\nc.execute('INSERT INTO policies (sha256, yaml, signature, published_by, published_at) VALUES (?,?,?,?,?)',(sys.argv[2],sys.argv[3],sig,'mallory',int(time.time()*1000)+1000))\nc.commit()\n";
    let ok = Command::new(&python)
        .args(["-c", script])
        .arg(data.join("vigil.db"))
        .arg(&digest)
        .arg(&forged)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    // The reporter hands it out; the agent refuses it and keeps version 1.
    let handed: Value = r
        .client()
        .get(format!("{}/api/v1/policy", r.base))
        .bearer_auth(std::fs::read_to_string(agent.token_file()).unwrap().trim())
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(handed["version"], "666");
    wait_until(60, "a report telling the refusal", || {
        last = r.newest_report(&staff, "signed-1").unwrap_or_default();
        last["agent"]["policy_refused"].is_string()
    });
    assert_eq!(last["policy"]["version"], "1", "{last:#}");
    let why = last["agent"]["policy_refused"].as_str().unwrap();
    assert!(why.contains("signature does not verify"), "{why}");
    assert!(agent.log().contains("refusing the reporter's policy"));
    std::thread::sleep(std::time::Duration::from_secs(2));
    last = r.newest_report(&staff, "signed-1").unwrap();
    assert_eq!(
        last["policy"]["version"], "1",
        "the forged policy ran: {last:#}"
    );
    assert!(
        agent.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the agent stopped"
    );

    // A properly published policy is taken again.
    let v2 = dir.path().join("v2.yaml");
    std::fs::write(&v2, version(&base, "2")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    publish(&data, &v2);
    wait_until(60, "a report under policy version 2", || {
        last = r.newest_report(&staff, "signed-1").unwrap_or_default();
        ran("2")(&last)
    });
    assert!(last["agent"]["policy_refused"].is_null(), "{last:#}");
    assert_eq!(agent.stop(), 0);
}
