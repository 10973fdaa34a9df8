//! Facts for `erasure`: for every pending task of a phase this host handles,
//! [`crate::act::erasure::run_task`] runs the deleters and verifies absence;
//! when no task is pending, [`readiness`] looks (without changing anything)
//! whether the deleters could run. Everything found goes into the facts;
//! `judge` decides.

mod readiness;

use vigil_rules::checks::erasure::{valid_account, Facts, Params, TaskFacts};

use super::host::HostCtx;
use crate::act::erasure::run_task;
use crate::collect::CollectError;

pub async fn collect(p: &Params, ctx: &HostCtx) -> Result<Facts, CollectError> {
    let timeout = p.hook_timeout.as_std();
    let mut facts = Facts::default();
    for t in &p.tasks {
        let mut tf = TaskFacts {
            account: t.account.clone(),
            phase: t.phase.clone(),
            handled: p.handles(&t.phase),
            actions: vec![],
            probes: vec![],
            earlier: vec![],
            export: None,
            error: None,
        };
        if tf.handled {
            if valid_account(&t.account) {
                run_task(p, t, ctx, timeout, &mut tf).await;
            } else {
                tf.error = Some("account id is not `[A-Za-z0-9._-]+`; nothing was run".into());
            }
        }
        facts.tasks.push(tf);
    }
    if !p.tasks.iter().any(|t| p.handles(&t.phase)) {
        facts.readiness = Some(readiness::gather(p, ctx).await);
    }
    Ok(facts)
}
