//! Namespace operations (a DirectView's push, pull, clear and load) waiting
//! for their engines' replies: the client's answer goes out when every
//! target has replied, or has left.

use std::collections::{HashMap, HashSet};

use wasp_proto::EngineId;
use wasp_proto::msg::NamespaceReply;

use super::Engines;

/// One operation in flight.
struct Pending {
    session: u32,
    /// The client's request id.
    id: u64,
    /// Distinct engines, in the client's order.
    targets: Vec<EngineId>,
    replies: Vec<Option<NamespaceReply>>,
}

/// A finished operation: the session and request id to answer, and the
/// replies in target order.
pub(crate) type Answered = (u32, u64, Vec<NamespaceReply>);

/// Operations in flight by request number.
#[derive(Default)]
pub(crate) struct Namespaces {
    pending: HashMap<u64, Pending>,
    next_request: u64,
}

/// The distinct `targets`, in the order of their first appearance, or a
/// refusal naming those not connected (and the connected ones).
pub(crate) fn distinct_targets(
    targets: Vec<EngineId>,
    engines: &Engines,
) -> Result<Vec<EngineId>, String> {
    // A `HashSet` keeps a long list linear.
    let mut seen = HashSet::new();
    let mut distinct = Vec::new();
    let mut unknown = Vec::new();
    for target in targets {
        if !seen.insert(target) {
            continue;
        }
        if engines.contains(target) {
            distinct.push(target);
        } else if unknown.len() < 8 {
            unknown.push(target.to_string());
        }
    }
    if unknown.is_empty() {
        return Ok(distinct);
    }
    let connected: Vec<String> = engines.ids().iter().map(ToString::to_string).collect();
    Err(format!(
        "not connected: engine {}; the connected engines are [{}]",
        unknown.join(", engine "),
        connected.join(", ")
    ))
}

impl Namespaces {
    /// Starts an operation on `targets`; returns its request number.
    pub(crate) fn start(&mut self, session: u32, id: u64, targets: Vec<EngineId>) -> u64 {
        let request = self.next_request;
        self.next_request += 1;
        let replies = vec![None; targets.len()];
        self.pending.insert(
            request,
            Pending {
                session,
                id,
                targets,
                replies,
            },
        );
        request
    }

    /// An engine replied; the answer, if that was the last reply.
    pub(crate) fn reply(
        &mut self,
        request: u64,
        engine: EngineId,
        reply: NamespaceReply,
    ) -> Option<Answered> {
        let pending = self.pending.get_mut(&request)?;
        for (target, slot) in pending.targets.iter().zip(pending.replies.iter_mut()) {
            if *target == engine && slot.is_none() {
                *slot = Some(reply);
                break;
            }
        }
        self.complete(request)
    }

    /// The answer, if every target has replied.
    pub(crate) fn complete(&mut self, request: u64) -> Option<Answered> {
        let done = self
            .pending
            .get(&request)
            .is_some_and(|p| p.replies.iter().all(Option::is_some));
        if !done {
            return None;
        }
        let pending = self.pending.remove(&request)?;
        let replies = pending.replies.into_iter().flatten().collect();
        Some((pending.session, pending.id, replies))
    }

    /// `engine` left: it fails its part of every operation; the answers of
    /// those that are now complete.
    pub(crate) fn engine_left(&mut self, engine: EngineId, why: &str) -> Vec<Answered> {
        let waiting: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.targets.contains(&engine))
            .map(|(request, _)| *request)
            .collect();
        waiting
            .into_iter()
            .filter_map(|request| {
                self.reply(request, engine, Err(format!("engine {engine} left: {why}")))
            })
            .collect()
    }

    /// A client left: its operations are answered to no one.
    pub(crate) fn forget_session(&mut self, session: u32) {
        self.pending.retain(|_, p| p.session != session);
    }
}
