//! Tenant quotas at admission: a submission is admitted or refused whole,
//! however many slices it leaves in, and a task's limits are held under
//! its tenant's ceilings.
//!
//! A map of 5,000 tasks leaves the client in slices of 16, 32, ... 4,096
//! tasks, each its own [`ClientMsg::Submit`](wasp_proto::msg::ClientMsg)
//! naming the whole [`Submission`]. The queued-task quota is checked once,
//! at the first slice, for every task of the submission; the tasks still
//! to come are then *reserved*: they count as queued for the tenant until
//! they arrive, so that another submission checked meanwhile cannot take
//! their room, and a later slice is admitted without a check. A refused
//! first slice leaves its refusal for the slices after it, so none of
//! them is admitted either: nothing is partly submitted.

use std::collections::HashMap;

use wasp_proto::msg::{Quotas, Submission, TaskLimits};
use wasp_proto::{TaskId, Tenant};

/// Most submissions one client connection may have open (first slice
/// seen, later slices still to come) at once: each holds an entry here.
/// The client's views submit one at a time per call, so only a client
/// with this many maps leaving at once meets it.
pub(crate) const MAX_OPEN_SUBMISSIONS: usize = 1024;

/// A submission whose first slice came and whose last has not.
struct Open {
    tenant: Tenant,
    /// Its tasks still to come.
    remaining: u64,
    /// Why it was refused, for the slices still to come; `None`: admitted,
    /// its remaining tasks reserved.
    refusal: Option<String>,
}

/// The open submissions and the tasks they reserve.
#[derive(Default)]
pub(crate) struct Reservations {
    open: HashMap<(u32, TaskId), Open>,
    /// Tasks reserved per tenant: the remaining tasks of its admitted
    /// open submissions.
    reserved: HashMap<Tenant, u64>,
    /// Open submissions per client session.
    per_session: HashMap<u32, usize>,
}

/// A tenant's queued work at a check, for the refusal's numbers.
pub(crate) struct Queue {
    /// Its tasks waiting for an engine now.
    pub(crate) queued: u64,
    /// Its quota of them, if any.
    pub(crate) quota: Option<u64>,
}

impl Reservations {
    /// Admits or refuses a slice of `len` tasks of `submission`, sent by
    /// `session` of `tenant`, whose queue is `queue`. `Err` is the refusal
    /// every task of the slice fails with.
    pub(crate) fn admit(
        &mut self,
        session: u32,
        tenant: &Tenant,
        submission: Submission,
        first_id: TaskId,
        len: u64,
        queue: Queue,
    ) -> Result<(), String> {
        let key = (session, submission.first);
        if let Some(open) = self.open.get_mut(&key) {
            let taken = len.min(open.remaining);
            open.remaining -= taken;
            let verdict = match &open.refusal {
                Some(refusal) => Err(refusal.clone()),
                None => {
                    release(&mut self.reserved, tenant, taken);
                    if taken < len {
                        Err(format!(
                            "submission {} announced {} tasks and sent more: the tasks past \
                             them are refused",
                            submission.first, submission.tasks
                        ))
                    } else {
                        Ok(())
                    }
                }
            };
            if open.remaining == 0 {
                self.close(key);
            }
            return verdict;
        }
        if first_id != submission.first {
            // Its first slice never came, or was refused without a trace
            // (too many open submissions): none of it is admitted.
            return Err(format!(
                "submission {} was not admitted: its first slice was refused or never sent",
                submission.first
            ));
        }
        let total = submission.tasks.max(len);
        let later = total - len;
        let reserved = self.reserved(tenant);
        let verdict = match queued_refusal(tenant, &queue, reserved, total) {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        };
        if later > 0 {
            let open_here = self.per_session.entry(session).or_insert(0);
            if *open_here >= MAX_OPEN_SUBMISSIONS {
                return Err(format!(
                    "too many submissions under way on this connection: at most \
                     {MAX_OPEN_SUBMISSIONS} may be leaving at once"
                ));
            }
            *open_here += 1;
            if verdict.is_ok() {
                *self.reserved.entry(tenant.clone()).or_insert(0) += later;
            }
            self.open.insert(
                key,
                Open {
                    tenant: tenant.clone(),
                    remaining: later,
                    refusal: verdict.clone().err(),
                },
            );
        }
        verdict
    }

    /// Tasks reserved for `tenant`'s open submissions.
    pub(crate) fn reserved(&self, tenant: &Tenant) -> u64 {
        self.reserved.get(tenant).copied().unwrap_or(0)
    }

    /// A client left: its open submissions will not continue, and their
    /// reservations are released.
    pub(crate) fn forget_session(&mut self, session: u32) {
        if self.per_session.remove(&session).is_none() {
            return;
        }
        let keys: Vec<(u32, TaskId)> = self
            .open
            .keys()
            .filter(|(s, _)| *s == session)
            .copied()
            .collect();
        for key in keys {
            self.close(key);
        }
    }

    fn close(&mut self, key: (u32, TaskId)) {
        let Some(open) = self.open.remove(&key) else {
            return;
        };
        if open.refusal.is_none() {
            release(&mut self.reserved, &open.tenant, open.remaining);
        }
        if let Some(count) = self.per_session.get_mut(&key.0) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_session.remove(&key.0);
            }
        }
    }
}

/// Why `adding` more tasks would pass `tenant`'s queued-task quota, if
/// they would: `queue` holds its queued tasks and quota, `reserved` the
/// tasks its open submissions have still to send.
pub(crate) fn queued_refusal(
    tenant: &Tenant,
    queue: &Queue,
    reserved: u64,
    adding: u64,
) -> Option<String> {
    let quota = queue.quota?;
    if queue.queued.saturating_add(reserved).saturating_add(adding) <= quota {
        return None;
    }
    Some(format!(
        "tenant {tenant}'s queued-task quota is {quota} tasks: it has {} queued{} and this \
         submission adds {adding}; nothing of it was submitted (wait for results, submit less \
         at once, or ask an admin for a larger quota: wasp tenant set {tenant} --max-queued N)",
        queue.queued,
        if reserved > 0 {
            format!(" and {reserved} on the way")
        } else {
            String::new()
        },
    ))
}

fn release(reserved: &mut HashMap<Tenant, u64>, tenant: &Tenant, tasks: u64) {
    if let Some(count) = reserved.get_mut(tenant) {
        *count = count.saturating_sub(tasks);
        if *count == 0 {
            reserved.remove(tenant);
        }
    }
}

/// `limits` held under `tenant`'s ceilings in `quotas`: a limit asked for
/// above a ceiling is refused, naming it; one not asked for is the
/// ceiling (the engine caps it further by its own limit).
pub(crate) fn within_ceilings(
    limits: TaskLimits,
    quotas: &Quotas,
    tenant: &Tenant,
) -> Result<TaskLimits, String> {
    let mut held = limits;
    if let Some(ceiling) = quotas.task_time_us {
        match limits.timeout_us {
            Some(asked) if asked > ceiling => {
                return Err(format!(
                    "the task asks for a time limit of {} s, above tenant {tenant}'s task time \
                     ceiling of {} s (task_time = {} s; wasp tenant set {tenant} --max-task-time \
                     SECONDS)",
                    seconds(asked),
                    seconds(ceiling),
                    seconds(ceiling),
                ));
            }
            Some(_) => {}
            None => held.timeout_us = Some(ceiling),
        }
    }
    if let Some(ceiling) = quotas.task_memory_bytes {
        match limits.memory_bytes {
            Some(asked) if asked > ceiling => {
                return Err(format!(
                    "the task asks for a memory limit of {asked} bytes, above tenant {tenant}'s \
                     task memory ceiling of {ceiling} bytes (task_memory = {}; wasp tenant set \
                     {tenant} --max-task-memory SIZE)",
                    crate::config::human_bytes(ceiling),
                ));
            }
            Some(_) => {}
            None => held.memory_bytes = Some(ceiling),
        }
    }
    Ok(held)
}

/// `limits` raised by a retry's escalation, capped at the ceilings.
pub(crate) fn capped(limits: TaskLimits, quotas: &Quotas) -> TaskLimits {
    let cap = |value: Option<u64>, ceiling: Option<u64>| match (value, ceiling) {
        (Some(value), Some(ceiling)) => Some(value.min(ceiling)),
        (value, _) => value,
    };
    TaskLimits {
        timeout_us: cap(limits.timeout_us, quotas.task_time_us),
        memory_bytes: cap(limits.memory_bytes, quotas.task_memory_bytes),
    }
}

/// Microseconds as seconds, without trailing zeros.
fn seconds(us: u64) -> String {
    let text = format!("{:.6}", us as f64 / 1e6);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> Tenant {
        Tenant("bob".into())
    }

    fn queue(queued: u64, quota: u64) -> Queue {
        Queue {
            queued,
            quota: Some(quota),
        }
    }

    #[test]
    fn a_submission_in_slices_is_admitted_or_refused_whole() {
        let mut r = Reservations::default();
        let bob = tenant();
        // 100 tasks in slices of 16, 32, 52, quota 100: admitted whole, the
        // later slices reserved, so another submission of 1 is refused
        // until they came.
        let map = Submission {
            first: TaskId(1),
            tasks: 100,
        };
        assert!(r.admit(1, &bob, map, TaskId(1), 16, queue(0, 100)).is_ok());
        assert_eq!(r.reserved(&bob), 84);
        let one = Submission {
            first: TaskId(500),
            tasks: 1,
        };
        let refused = r.admit(1, &bob, one, TaskId(500), 1, queue(16, 100));
        assert!(
            refused.as_ref().is_err_and(
                |e| e.contains("queued-task quota is 100") && e.contains("84 on the way")
            ),
            "{refused:?}"
        );
        assert!(
            r.admit(1, &bob, map, TaskId(17), 32, queue(16, 100))
                .is_ok()
        );
        assert!(
            r.admit(1, &bob, map, TaskId(49), 52, queue(48, 100))
                .is_ok()
        );
        assert_eq!(r.reserved(&bob), 0);
        assert!(r.open.is_empty() && r.per_session.is_empty());

        // 101 tasks: the first slice is refused, and every later one.
        let big = Submission {
            first: TaskId(1000),
            tasks: 101,
        };
        let first = r.admit(1, &bob, big, TaskId(1000), 16, queue(0, 100));
        assert!(first.is_err());
        let later = r.admit(1, &bob, big, TaskId(1016), 85, queue(0, 100));
        assert_eq!(later, first, "the later slice carries the same refusal");
        assert!(
            r.open.is_empty(),
            "the refusal is forgotten at the last slice"
        );
        // A continuation whose start was never seen is refused too.
        let stray = Submission {
            first: TaskId(2000),
            tasks: 50,
        };
        assert!(
            r.admit(1, &bob, stray, TaskId(2020), 30, queue(0, 100))
                .is_err()
        );
    }

    #[test]
    fn a_leaving_client_releases_its_reservations() {
        let mut r = Reservations::default();
        let bob = tenant();
        let map = Submission {
            first: TaskId(1),
            tasks: 1000,
        };
        assert!(r.admit(7, &bob, map, TaskId(1), 16, queue(0, 1000)).is_ok());
        assert_eq!(r.reserved(&bob), 984);
        r.forget_session(7);
        assert_eq!(r.reserved(&bob), 0);
        assert!(r.open.is_empty() && r.per_session.is_empty());
    }

    #[test]
    fn open_submissions_per_connection_are_bounded() {
        let mut r = Reservations::default();
        let bob = tenant();
        for i in 0..MAX_OPEN_SUBMISSIONS as u64 {
            let s = Submission {
                first: TaskId(i * 10),
                tasks: 2,
            };
            assert!(
                r.admit(1, &bob, s, TaskId(i * 10), 1, queue(0, u64::MAX))
                    .is_ok()
            );
        }
        let s = Submission {
            first: TaskId(1 << 40),
            tasks: 2,
        };
        let refused = r.admit(1, &bob, s, TaskId(1 << 40), 1, queue(0, u64::MAX));
        assert!(refused.is_err_and(|e| e.contains("at most 1024")));
        assert_eq!(r.open.len(), MAX_OPEN_SUBMISSIONS);
    }

    #[test]
    fn ceilings_refuse_what_is_above_and_fill_what_is_not_asked() {
        let bob = tenant();
        let quotas = Quotas {
            task_time_us: Some(2_000_000),
            task_memory_bytes: Some(64 << 20),
            ..Quotas::default()
        };
        let none = within_ceilings(TaskLimits::default(), &quotas, &bob);
        assert_eq!(
            none,
            Ok(TaskLimits {
                timeout_us: Some(2_000_000),
                memory_bytes: Some(64 << 20)
            })
        );
        let long = TaskLimits {
            timeout_us: Some(2_500_000),
            memory_bytes: None,
        };
        let refused = within_ceilings(long, &quotas, &bob);
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.contains("time limit of 2.5 s") && e.contains("task_time = 2 s")),
            "{refused:?}"
        );
        let big = TaskLimits {
            timeout_us: None,
            memory_bytes: Some(65 << 20),
        };
        let refused = within_ceilings(big, &quotas, &bob);
        assert!(refused.is_err_and(|e| e.contains("task_memory = 64 MiB")));
        let doubled = TaskLimits {
            timeout_us: Some(4_000_000),
            memory_bytes: Some(32 << 20),
        };
        assert_eq!(
            capped(doubled, &quotas),
            TaskLimits {
                timeout_us: Some(2_000_000),
                memory_bytes: Some(32 << 20)
            }
        );
    }
}
