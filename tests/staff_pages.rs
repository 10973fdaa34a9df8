//! The staff HTML pages end to end: authentication (Bearer, the login form's
//! strict session cookie, one-time login links), CSRF on forms, filters,
//! escaping, and every page loaded in real headless Chromium with screenshots
//! kept under `target/screenshots/staff-pages/` for a person to look at. The
//! fleet pages at scale (overview, host list, control, host) are in
//! `staff/fleet_views.rs`.

#[path = "staff/seed.rs"]
mod seed;

#[path = "staff/fleet_views.rs"]
mod fleet_views;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use vigil_tests::*;

fn no_redirects() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn add_password_user(r: &Reporter, name: &str, password: &str) {
    let mut child = Command::new(binary("vigil-reporter", "vigil-reporter"))
        .args([
            "user",
            "add",
            name,
            "--role",
            "auditor",
            "--password-stdin",
            "--data",
        ])
        .arg(&r.data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn report_incident(r: &Reporter, summary: &str, description: &str) -> String {
    let v: Value = r
        .client()
        .post(format!("{}/api/v1/incidents", r.base))
        .json(&json!({"summary": summary, "description": description, "affected_area": "www"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["tracking_id"].as_str().unwrap().to_owned()
}

fn csrf_of(page: &str) -> String {
    let i = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[i..].split('"').next().unwrap().to_owned()
}

#[test]
fn login_form_session_cookie_csrf_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let (r, staff) = seed::seeded(dir.path(), "");
    add_password_user(&r, "carol", "correct horse battery staple");
    let c = no_redirects();
    let url = |p: &str| format!("{}{p}", r.base);

    // Anonymous: sent to the login form, with the page to come back to.
    let resp = c.get(url("/reports/hosts/web-2")).send().unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(
        resp.headers()["location"],
        "/login?next=%2Freports%2Fhosts%2Fweb-2"
    );
    let form = c
        .get(url("/login?next=%2Freports%2Fhosts%2Fweb-2"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        form.contains("value=\"&#x2f;reports&#x2f;hosts&#x2f;web-2\""),
        "{form}"
    );

    // Wrong password, unknown user, a user without a password: all 401.
    for body in [
        "name=carol&password=wrong+horse&next=%2F",
        "name=mallory&password=correct+horse+battery+staple",
        "name=alice&password=anything",
    ] {
        let resp = c
            .post(url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{body}");
    }

    // The right password: a strict, HttpOnly session cookie and the page asked for.
    let resp = c
        .post(url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=carol&password=correct+horse+battery+staple&next=%2Freports%2Fhosts%2Fweb-2")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"], "/reports/hosts/web-2");
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in [
        "vigil_session=vss_",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(
        !set.contains("Secure"),
        "plain HTTP on loopback: no Secure flag ({set})"
    );
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = c
        .get(url("/reports/hosts/web-2"))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let page = page.text().unwrap();
    assert!(
        page.contains("signed in as carol") && page.contains("unexpected_open_port"),
        "{page}"
    );

    // An open redirect is refused.
    let resp = c
        .post(url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=carol&password=correct+horse+battery+staple&next=%2F%2Fevil.example%2F")
        .send()
        .unwrap();
    assert_eq!(resp.headers()["location"], "/");

    // CSRF: a session's form post needs its token.
    let id = report_incident(&r, "<b>bold</b> claim", "details");
    let post_triage = |body: &str| {
        c.post(url(&format!("/reports/incidents/{id}")))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(post_triage("status=acknowledged&note=x"), 403);
    assert_eq!(post_triage("csrf=0000&status=acknowledged&note=x"), 403);
    let page = c
        .get(url(&format!("/reports/incidents/{id}")))
        .header("cookie", &cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains("&lt;b&gt;bold&lt;&#x2f;b&gt; claim") || page.contains("&lt;b&gt;bold"),
        "{page}"
    );
    let token = csrf_of(&page);
    assert_eq!(
        post_triage(&format!("csrf={token}&status=acknowledged&note=seen")),
        303
    );
    let page = c
        .get(url(&format!("/reports/incidents/{id}")))
        .header("cookie", &cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains("new → acknowledged") && page.contains(">seen<"),
        "{page}"
    );

    // Sign out: the session is gone.
    let resp = c
        .post(url("/logout"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={token}"))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(
        c.get(url("/"))
            .header("cookie", &cookie)
            .send()
            .unwrap()
            .status()
            .as_u16(),
        303
    );

    // Bearer works on pages; filters narrow the matrix; bad filters are 400.
    let get = |p: &str| {
        let resp = c.get(url(p)).bearer_auth(&staff).send().unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    };
    let (s, all) = get("/");
    assert_eq!(s, 200);
    // The overview names failing hosts only; every host is on the host list.
    for text in ["Fleet overview", "web-2", "✗ FAIL", "✓ pass", "✓ attested"] {
        assert!(all.contains(text), "overview lacks {text}");
    }
    let (s, hosts) = get("/reports/hosts");
    assert_eq!(s, 200);
    for h in ["web-1", "web-2", "db-1"] {
        assert!(hosts.contains(&format!(">{h}</a>")), "host list lacks {h}");
    }
    let (_, failing) = get("/?status=fail");
    assert!(
        failing.contains("/reports/controls/SP-5") && !failing.contains("/reports/controls/SP-1\""),
        "{failing}"
    );
    let (_, one) = get("/?control=SP-3");
    assert!(one.contains("/reports/controls/SP-3") && !one.contains("/reports/controls/SP-5"));
    assert_eq!(get("/?status=bogus").0, 400);
    assert_eq!(get("/?colour=red").0, 400);
    let (s, control) = get("/reports/controls/SP-5");
    assert_eq!(s, 200);
    assert!(
        control.contains("<svg") && control.contains("role=\"img\""),
        "{control}"
    );
    assert_eq!(get("/reports/controls/NOPE").0, 404);
    assert_eq!(get("/reports/hosts/nope").0, 404);
    assert_eq!(get("/reports/incidents?status=new").0, 200);
    assert_eq!(get("/reports/incidents?status=closed").0, 400);
    let bad = c
        .get(url("/"))
        .bearer_auth("vgs_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .send()
        .unwrap();
    assert_eq!(bad.status().as_u16(), 401);
}

fn login_link(r: &Reporter, staff: &str) -> String {
    let v: Value = r
        .client()
        .post(format!("{}/api/v1/login-links", r.base))
        .bearer_auth(staff)
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["path"].as_str().unwrap().to_owned()
}

#[test]
fn pages_in_headless_chromium() {
    require_tool("chromium", "chromium");
    let dir = tempfile::tempdir().unwrap();
    let (r, staff) = seed::seeded(dir.path(), "");
    let injected = report_incident(
        &r,
        "<script>document.title='pwned'</script>",
        "<img src=x onerror=alert(1)>\nsecond line",
    );
    report_incident(
        &r,
        "Login page leaks the user list",
        "Enumerate users through the reset form.",
    );
    let shots = workspace().join("target/screenshots/staff-pages");
    std::fs::create_dir_all(&shots).unwrap();
    let opened = r
        .client()
        .post(format!("{}/api/v1/accounts/acme/closure", r.base))
        .bearer_auth(&staff)
        .json(&serde_json::json!({"requested_by": "owner <b>via</b> ticket", "reason": "account closed"}))
        .send()
        .unwrap();
    assert_eq!(opened.status().as_u16(), 201);

    // A login link works once.
    let link = login_link(&r, &staff);
    let c = no_redirects();
    assert_eq!(
        c.get(format!("{}{link}", r.base))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        303
    );
    assert_eq!(
        c.get(format!("{}{link}", r.base))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        401
    );

    let pages: &[(&str, &str, &[&str])] = &[
        (
            "overview",
            "/",
            &["Fleet overview", "web-2", "✗ FAIL", "SP-5"],
        ),
        ("overview-failing", "/?status=fail", &["SP-5", "web-2"]),
        (
            "control-SP-5",
            "/reports/controls/SP-5",
            &[
                "SP-5",
                "<svg",
                "What to do about its findings",
                "port_not_allowed",
            ],
        ),
        (
            "host-web-2",
            "/reports/hosts/web-2",
            &["Host web-2", "unexpected_open_port", "tcp/9200"],
        ),
        (
            "incidents",
            "/reports/incidents",
            &["Incidents", "Login page leaks the user list"],
        ),
        (
            "closures",
            "/reports/closures",
            &["Account closures", "acme", "requested"],
        ),
        (
            "closure-acme",
            "/reports/closures/acme",
            &[
                "Closure of acme",
                "local_backups",
                "owner &lt;b&gt;via&lt;/b&gt; ticket",
            ],
        ),
        (
            "incident",
            &format!("/reports/incidents/{injected}"),
            &["&lt;script&gt;document.title", "&lt;img src=x"],
        ),
    ];
    for (name, path, expect) in pages {
        let profile = tempfile::tempdir().unwrap();
        let next = format!(
            "?next={}",
            path.replace('?', "%3F")
                .replace('=', "%3D")
                .replace('/', "%2F")
        );
        let dom = chromium(
            profile.path(),
            &["--dump-dom"],
            &format!("{}{}{next}", r.base, login_link(&r, &staff)),
        );
        for e in *expect {
            assert!(
                dom.contains(e),
                "{name}: the rendered page lacks `{e}`:\n{dom}"
            );
        }
        assert!(
            !dom.contains("<script"),
            "{name}: a script element in the DOM"
        );
        assert!(!dom.contains("<title>pwned"), "{name}: injected script ran");
        let png = shots.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&png);
        chromium(
            profile.path(),
            &[
                &format!("--screenshot={}", png.display()),
                "--window-size=1280,900",
            ],
            &format!("{}{}{next}", r.base, login_link(&r, &staff)),
        );
        let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 10_000,
            "{name}: screenshot {} is {size} bytes",
            png.display()
        );
    }

    // The public form needs no login and no JavaScript.
    let profile = tempfile::tempdir().unwrap();
    let dom = chromium(
        profile.path(),
        &["--dump-dom"],
        &format!("{}/report-incident", r.base),
    );
    assert!(dom.contains("Report a security incident") && dom.contains("name=\"website\""));
    chromium(
        profile.path(),
        &[
            &format!(
                "--screenshot={}",
                shots.join("report-incident.png").display()
            ),
            "--window-size=1280,900",
        ],
        &format!("{}/report-incident", r.base),
    );
    // Without a session, Chromium lands on the login form.
    let profile = tempfile::tempdir().unwrap();
    let dom = chromium(
        profile.path(),
        &["--dump-dom"],
        &format!("{}/reports/incidents", r.base),
    );
    assert!(
        dom.contains("Sign in") && dom.contains("name=\"password\""),
        "{dom}"
    );
}
