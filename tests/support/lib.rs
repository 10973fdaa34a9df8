//! Helpers for the end-to-end tests: the built binaries, fixture hosts, and
//! the real services a test needs (with a clear message when one is missing).
//!
//! One module a concern; everything is re-exported here, so a test writes
//! `use vigil_tests::*` or names what it uses from the crate root.

mod agent;
mod answers;
mod binaries;
mod certs;
mod clamd;
mod daemon;
mod fixture;
mod machine;
mod metrics;
mod netns;
mod pg;
mod policy;
mod reporter;
mod reports;
mod restic;

pub use agent::{
    agent, agent_check, check_of, codes, report_json, run_agent, stderr, stdout, AgentCheck,
};
pub use answers::{
    assert_each_report_stored_once, closure_history_states, CLOSURE_STATES_IN_ORDER,
};
pub use binaries::{binary, workspace};
pub use certs::private_ca_certificate;
pub use clamd::Clamd;
pub use daemon::DaemonAgent;
pub use fixture::{copy_dir, FixtureHost};
pub use machine::{chromium, free_port, require_tool, sha256_hex, wait_until};
pub use metrics::{scrape, Exposition};
pub use netns::{run_ok, Children, Netns};
pub use pg::{PgCluster, PgReplication, Streaming};
pub use policy::{
    check_yaml, control_yaml, policy_yaml, single_check_policy, write_policy, SingleCheckPolicy,
};
pub use reporter::{Reporter, ENROLL_SECRET};
pub use reports::report_of;
pub use restic::Restic;
