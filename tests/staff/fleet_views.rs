//! The fleet pages that aggregate (issue 22, item 1), end to end on a real
//! reporter with reports posted through the API: the controls in the
//! policy's order, the first failing hosts and the count of the rest, the
//! host list's pagination and filters, a host page keeping a control's
//! findings from an older report, relative times with the exact time on
//! hover, and agents' strings escaped. `screenshots_of_a_200_host_fleet`
//! loads the four pages of a 200-host fleet in headless Chromium and keeps
//! the screenshots under `target/screenshots/fleet-views/`.

use serde_json::{json, Value};
use vigil_tests::*;

use super::seed::{post, report, Check};

fn start(dir: &std::path::Path) -> (Reporter, String) {
    let cfg = dir.join("reporter.yaml");
    let policy = workspace().join("policies/papyrs.yaml");
    std::fs::write(
        &cfg,
        format!("policy: {}\norganization: Papyrs\n", policy.display()),
    )
    .unwrap();
    let r = Reporter::start(
        &dir.join("data"),
        false,
        None,
        &["--config", cfg.to_str().unwrap()],
    );
    let staff = r.add_user("alice", "admin");
    (r, staff)
}

fn get(r: &Reporter, staff: &str, path: &str) -> (u16, String) {
    let resp = r
        .client()
        .get(format!("{}{path}", r.base))
        .bearer_auth(staff)
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

fn ok(r: &Reporter, staff: &str, path: &str) -> String {
    let (s, body) = get(r, staff, path);
    assert_eq!(s, 200, "{path}: {body}");
    body
}

fn pass(control: &'static str, ty: &'static str) -> Check<'static> {
    (control, "c", ty, "pass", "all good", json!({}), json!([]))
}

const INJECTED: &str = "<img src=x onerror=alert(1)>";

fn firewall_fail() -> Check<'static> {
    (
        "SP-5",
        "inbound",
        "firewall",
        "fail",
        "port 9200 open <script>alert(2)</script>",
        json!({}),
        json!([{"code": "port_not_allowed", "severity": "high", "subject": "0.0.0.0:9200",
                "message": format!("tcp/9200 accepts anything {INJECTED}")}]),
    )
}

/// The host names of the rows of a host list page, in order.
fn listed_hosts(page: &str) -> Vec<String> {
    page.split("<tr><th scope=\"row\"><a href=\"/reports/hosts/")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect()
}

/// Rows of the control page's host table, in order.
fn control_rows(page: &str) -> Vec<String> {
    let table = page
        .split("<table id=\"control-hosts\">")
        .nth(1)
        .unwrap()
        .split("</table>")
        .next()
        .unwrap();
    table
        .split("<tr><td><a href=\"/reports/hosts/")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect()
}

#[test]
fn overview_host_list_control_and_host_pages_aggregate() {
    let dir = tempfile::tempdir().unwrap();
    let (r, staff) = start(dir.path());
    let now = chrono::Utc::now();
    let recent = now - chrono::Duration::minutes(10);
    let older = now - chrono::Duration::hours(2) - chrono::Duration::minutes(5);

    // 25 app hosts; SP-5 fails on the first 8.
    for i in 1..=25 {
        let host = format!("app-{i:02}");
        let token = r.enroll(&host, 3600);
        if i == 1 {
            // app-01's firewall failure is in an older report; its newest
            // report does not carry SP-5 at all.
            post(
                &r,
                &token,
                &report(
                    &host,
                    &[firewall_fail(), pass("SP-3", "password_storage")],
                    older,
                ),
            );
            post(
                &r,
                &token,
                &report(
                    &host,
                    &[
                        pass("SP-3", "password_storage"),
                        pass("SP-10", "attestation"),
                    ],
                    recent,
                ),
            );
            continue;
        }
        let mut checks = vec![
            pass("SP-3", "password_storage"),
            pass("SP-10", "attestation"),
        ];
        checks.push(if i <= 8 {
            firewall_fail()
        } else {
            (
                "SP-5",
                "inbound",
                "firewall",
                "pass",
                "default deny",
                json!({}),
                json!([]),
            )
        });
        post(&r, &token, &report(&host, &checks, recent));
    }
    // A database host with its role, and a host that stopped reporting.
    let db = r.enroll_with_roles("db-1", 3600, &["db"]);
    post(
        &r,
        &db,
        &report("db-1", &[pass("SP-3", "password_storage")], recent),
    );
    let gone = r.enroll("gone-1", 60);
    post(
        &r,
        &gone,
        &report("gone-1", &[pass("SP-3", "password_storage")], older),
    );

    // --- overview -------------------------------------------------------
    let overview = ok(&r, &staff, "/");
    assert!(
        overview.len() < 200_000,
        "overview is {} bytes",
        overview.len()
    );
    // The policy's order, never lexical: SP-2 before SP-10, SP-10 before GDPR-1.
    let pos = |id: &str| {
        overview
            .find(&format!("<tr id=\"control-{id}\">"))
            .unwrap_or_else(|| panic!("no row for {id}"))
    };
    assert!(pos("SP-1") < pos("SP-2"));
    assert!(pos("SP-2") < pos("SP-9") && pos("SP-9") < pos("SP-10"));
    assert!(pos("SP-10") < pos("GDPR-1") && pos("GDPR-1") < pos("BK-1"));
    // SP-5: the first five failing hosts by name, then "and 2 more" (app-01's
    // SP-5 failure is its newest SP-5 result, so 8 hosts fail).
    let sp5 = &overview[pos("SP-5")..pos("SP-6")];
    for h in ["app-01", "app-02", "app-03", "app-04", "app-05"] {
        assert!(
            sp5.contains(&format!(">{h}</a>")),
            "SP-5 row lacks {h}: {sp5}"
        );
    }
    assert!(!sp5.contains(">app-06</a>"), "{sp5}");
    assert!(
        sp5.contains(
            "<a class=\"more\" href=\"/reports/controls/SP-5?status=fail\">and 3 more</a>"
        ),
        "{sp5}"
    );
    // No per-host matrix: a passing host is named nowhere on the overview.
    assert!(
        !overview.contains("app-20"),
        "the overview lists every host"
    );
    // Hosts in numbers: 27 hosts, 1 stale, 1 with role db, 8 failing.
    assert!(
        overview.contains("<a href=\"/reports/hosts?stale=yes\">1</a>"),
        "{overview}"
    );
    assert!(
        overview.contains("<a href=\"/reports/hosts?status=fail\">8</a>"),
        "{overview}"
    );
    assert!(overview.contains("<code>db</code> 1"), "{overview}");
    assert!(overview.contains("id=\"score\""));
    assert!(overview.contains("<svg"), "no trend chart");

    // --- host list ------------------------------------------------------
    let all = ok(&r, &staff, "/reports/hosts?per=20");
    let first = listed_hosts(&all);
    assert_eq!(first.len(), 20, "{all}");
    // Failing first, by name.
    assert_eq!(
        &first[..8],
        ["app-01", "app-02", "app-03", "app-04", "app-05", "app-06", "app-07", "app-08"]
    );
    assert!(all.contains("1–20 of 27"), "{all}");
    assert!(
        all.contains("href=\"/reports/hosts?per=20&amp;page=2\""),
        "{all}"
    );
    let second = ok(&r, &staff, "/reports/hosts?per=20&page=2");
    let rest = listed_hosts(&second);
    assert_eq!(rest.len(), 7, "{second}");
    assert!(second.contains("21–27 of 27"));
    assert!(rest.iter().all(|h| !first.contains(h)), "pages overlap");
    assert_eq!(
        listed_hosts(&ok(&r, &staff, "/reports/hosts?status=fail")),
        ["app-01", "app-02", "app-03", "app-04", "app-05", "app-06", "app-07", "app-08"]
    );
    let by_name = listed_hosts(&ok(&r, &staff, "/reports/hosts?q=APP-1"));
    let mut want: Vec<String> = (10..=19).map(|i| format!("app-{i}")).collect();
    want.sort();
    let mut got = by_name.clone();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(
        listed_hosts(&ok(&r, &staff, "/reports/hosts?role=db")),
        ["db-1"]
    );
    assert_eq!(
        listed_hosts(&ok(&r, &staff, "/reports/hosts?stale=yes")),
        ["gone-1"]
    );
    assert_eq!(
        listed_hosts(&ok(
            &r,
            &staff,
            "/reports/hosts?status=fail&q=app-0&per=20&page=1"
        ))
        .len(),
        8
    );
    for bad in ["status=bogus", "per=7", "stale=perhaps", "colour=red"] {
        assert_eq!(
            get(&r, &staff, &format!("/reports/hosts?{bad}")).0,
            400,
            "{bad}"
        );
    }

    // --- control page ---------------------------------------------------
    let control = ok(&r, &staff, "/reports/controls/SP-5?status=fail&per=20");
    assert_eq!(
        control_rows(&control),
        ["app-01", "app-02", "app-03", "app-04", "app-05", "app-06", "app-07", "app-08"]
    );
    assert!(control.contains("port_not_allowed"), "no remediation table");
    assert!(
        control.contains("Remove the rule that accepts the port"),
        "{control}"
    );
    let everyone = ok(&r, &staff, "/reports/controls/SP-5?per=20");
    let rows = control_rows(&everyone);
    assert_eq!(rows.len(), 20);
    assert_eq!(rows[0], "app-01", "failing hosts first");
    assert!(
        everyone.contains("href=\"?per=20&amp;page=2\""),
        "{everyone}"
    );
    assert_eq!(
        get(&r, &staff, "/reports/controls/SP-5?status=maybe").0,
        400
    );
    assert_eq!(get(&r, &staff, "/reports/controls/NOPE").0, 404);

    // --- host page ------------------------------------------------------
    let host = ok(&r, &staff, "/reports/hosts/app-01");
    // SP-5 is not in app-01's newest report: its findings come from the older one.
    let sp5 = host
        .split("<tr id=\"control-SP-5\">")
        .nth(1)
        .expect("SP-5 on app-01's page")
        .split("</tr>")
        .next()
        .unwrap();
    assert!(
        sp5.contains("✗ FAIL") && sp5.contains("port_not_allowed"),
        "{sp5}"
    );
    assert!(
        sp5.contains("Remove the rule that accepts the port"),
        "{sp5}"
    );
    // The relative time, with the exact time on hover.
    let exact = older.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert!(
        sp5.contains(&format!(
            "<time datetime=\"{exact}\" title=\"{exact}\">2 h ago</time>"
        )),
        "{sp5}"
    );
    let newest = recent.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let minutes = (chrono::Utc::now() - recent).num_minutes();
    assert!(
        [minutes - 1, minutes]
            .iter()
            .any(|m| host.contains(&format!(
                "<time datetime=\"{newest}\" title=\"{newest}\">{m} min ago</time>"
            ))),
        "{host}"
    );
    // Agents' strings are escaped.
    assert!(
        host.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{host}"
    );
    assert!(
        host.contains("&lt;script&gt;alert(2)&lt;&#x2f;script&gt;"),
        "{host}"
    );
    assert!(
        !host.contains("<img src=x") && !host.contains("<script>alert"),
        "{host}"
    );
    // Controls of the host in the policy's order.
    assert!(host.find("control-SP-3").unwrap() < host.find("control-SP-5").unwrap());
    assert!(host.find("control-SP-5").unwrap() < host.find("control-SP-10").unwrap());
    let gone = ok(&r, &staff, "/reports/hosts/gone-1");
    assert!(gone.contains("? stale"), "{gone}");
    assert_eq!(get(&r, &staff, "/reports/hosts/nope").0, 404);
}

/// `n` hosts as a fleet looks: most pass, some fail one control or two, a
/// few error or went quiet; three days of daily reports for the trend.
pub fn realistic_fleet(r: &Reporter, n: usize) {
    let now = chrono::Utc::now();
    for i in 0..n {
        let host = match i % 10 {
            0..=5 => format!("web-{i:03}"),
            6 | 7 => format!("worker-{i:03}"),
            8 => format!("db-{i:03}"),
            _ => format!("backup-{i:03}"),
        };
        let quiet = i % 47 == 3;
        let token = r.enroll(&host, if quiet { 60 } else { 3600 });
        for day in 0..3 {
            let at = now
                - chrono::Duration::days(2 - day)
                - chrono::Duration::minutes((i % 50) as i64 + 2);
            let mut checks: Vec<Check> = vec![
                pass("SP-1", "tls_endpoint"),
                pass("SP-2", "admin_access"),
                pass("SP-3", "password_storage"),
                pass("SP-4", "patch_level"),
                pass("SP-6", "admin_access"),
                (
                    "SP-8",
                    "c",
                    "attestation",
                    "pass",
                    "attested by ops",
                    json!({}),
                    json!([]),
                ),
                pass("SP-10", "attestation"),
            ];
            checks.push(if i % 9 == 0 || (day == 2 && i % 13 == 0) {
                firewall_fail()
            } else {
                pass("SP-5", "firewall")
            });
            if i % 17 == 0 && day > 0 {
                checks.push((
                    "SP-7",
                    "c",
                    "admin_access",
                    "fail",
                    "2 unknown keys",
                    json!({}),
                    json!([{"code": "unknown_key", "severity": "high", "subject": "/root/.ssh/authorized_keys:3", "message": "key SHA256:x is on no roster entry"}]),
                ));
            } else if i % 23 == 0 {
                checks.push((
                    "SP-7",
                    "c",
                    "admin_access",
                    "error",
                    "sshd -T failed",
                    json!({}),
                    json!([]),
                ));
            } else {
                checks.push(pass("SP-7", "admin_access"));
            }
            post(r, &token, &report(&host, &checks, at));
            if quiet {
                break;
            }
        }
    }
}

#[test]
fn screenshots_of_a_200_host_fleet() {
    require_tool("chromium", "chromium");
    let dir = tempfile::tempdir().unwrap();
    let (r, staff) = start(dir.path());
    realistic_fleet(&r, 200);
    let shots = workspace().join("target/screenshots/fleet-views");
    std::fs::create_dir_all(&shots).unwrap();
    let overview = ok(&r, &staff, "/");
    assert!(
        overview.contains("and "),
        "no \"and N more\" on a 200-host fleet"
    );
    let pages: &[(&str, &str, &str)] = &[
        ("overview", "/", "Fleet overview"),
        ("hosts", "/reports/hosts", "1–50 of 200"),
        ("control-SP-5", "/reports/controls/SP-5", "port_not_allowed"),
        ("host-web-000", "/reports/hosts/web-000", "Host web-000"),
    ];
    for (name, path, expect) in pages {
        let link: Value = r
            .client()
            .post(format!("{}/api/v1/login-links", r.base))
            .bearer_auth(&staff)
            .send()
            .unwrap()
            .json()
            .unwrap();
        let url = format!(
            "{}{}?next={}",
            r.base,
            link["path"].as_str().unwrap(),
            path.replace('/', "%2F")
        );
        let profile = tempfile::tempdir().unwrap();
        let png = shots.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&png);
        chromium(
            profile.path(),
            &[
                &format!("--screenshot={}", png.display()),
                "--window-size=1280,1600",
            ],
            &url,
        );
        let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 10_000,
            "{name}: screenshot {} is {size} bytes",
            png.display()
        );
        assert!(
            ok(&r, &staff, path).contains(expect),
            "{name} lacks {expect}"
        );
    }
}
