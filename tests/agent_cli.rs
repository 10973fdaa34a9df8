//! `vigil-agent` as users run it: validate, check, output formats, exit codes.

use vigil_tests::*;

#[test]
fn placeholder_builds() {
    let o = run_agent(&["--version"]);
    assert!(o.status.success());
}
