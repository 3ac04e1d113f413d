//! What happens after a reconcile wrote a Secret or restarted its consumers: the log lines
//! (names, hashes and reasons only, never a value). The restarts themselves are done by
//! `apply::apply_with` (a changed Secret) or by the catch-up in `reconcile` (a deferred one);
//! the dynamic lease lifecycle reports its own through `dynamic::Event`.

use crate::rollout::{Outcome, TargetReport};

use super::cache::Entry;
use super::log;

/// Called once after Secret `namespace/name` was created (`created`) or its content replaced.
pub fn secret_changed(entry: &Entry, namespace: &str, name: &str, created: bool) {
    log::info(&format!(
        "{}: Secret {namespace}/{name} {}",
        entry.key,
        if created { "created" } else { "updated" }
    ));
}

/// Logs the restarts that did something or still have to (a target that needed nothing is
/// not worth a line: an idle refresh logs nothing).
pub fn restarts(entry: &Entry, reports: &[TargetReport]) {
    for r in reports {
        match &r.outcome {
            Outcome::NotNeeded | Outcome::AlreadyRestarted => {}
            Outcome::Restarted => log::info(&format!("{}: {r}", entry.key)),
            Outcome::Deferred { .. } | Outcome::Failed(_) => {
                log::warn(&format!("{}: {r}", entry.key))
            }
        }
    }
}

/// When the earliest deferred restart may happen (Unix ms), and whether any restart is
/// pending (deferred or failed): the change has not reached every consumer yet.
pub fn pending(reports: &[TargetReport]) -> (Option<i64>, bool) {
    let ready_at = reports
        .iter()
        .filter_map(|r| match r.outcome {
            Outcome::Deferred { ready_at } => Some(ready_at),
            _ => None,
        })
        .min();
    let any = reports
        .iter()
        .any(|r| matches!(r.outcome, Outcome::Deferred { .. } | Outcome::Failed(_)));
    (ready_at, any)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::TargetKey;

    fn report(name: &str, outcome: Outcome) -> TargetReport {
        TargetReport {
            target: TargetKey {
                namespace: "apps".into(),
                kind: "Deployment".into(),
                name: name.into(),
            },
            secrets: vec!["web-config".into()],
            outcome,
        }
    }

    #[test]
    fn deferred_and_failed_restarts_are_pending_the_earliest_deferral_first() {
        assert_eq!(pending(&[]), (None, false));
        assert_eq!(
            pending(&[
                report("a", Outcome::Restarted),
                report("b", Outcome::AlreadyRestarted),
                report("c", Outcome::NotNeeded),
            ]),
            (None, false)
        );
        assert_eq!(
            pending(&[
                report("a", Outcome::Deferred { ready_at: 9_000 }),
                report("b", Outcome::Deferred { ready_at: 5_000 }),
                report("c", Outcome::Restarted),
            ]),
            (Some(5_000), true)
        );
        assert_eq!(
            pending(&[report(
                "a",
                Outcome::Failed("Deployment apps/a not found".into())
            )]),
            (None, true)
        );
    }
}
