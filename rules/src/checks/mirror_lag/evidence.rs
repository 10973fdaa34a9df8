//! The evidence a `mirror_lag` verdict carries.

/// The facts as collected (connection strings already redacted): the
/// replication views and every heartbeat, for errors as for passes.
pub type Evidence = super::Facts;
