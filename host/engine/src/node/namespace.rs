//! A tenant's namespace on an engine (ipyparallel's engine namespace):
//! push, pull and clear, within the engine's limit or the tenant's quota.

use std::collections::HashMap;

use wasp_proto::msg::{NamespaceOp, NamespaceReply, Pulled};
use wasp_proto::{EngineId, Tenant, Value};

use super::FRAME_BUDGET;
use crate::convert::memory_size;
use crate::limits::bytes;

/// One tenant's namespace on this engine (ipyparallel's engine namespace).
#[derive(Default)]
pub(super) struct Namespace {
    /// Its values by name.
    pub(super) values: HashMap<String, Value>,
    /// What they cost (names and `Value::cost_bytes`).
    pub(super) bytes: usize,
}

/// How many bytes a tenant's namespace may hold on this engine, and what
/// a refusal names: the engine's limit, or the tenant's quota below it.
pub(super) struct NamespaceLimit {
    bytes: usize,
    /// The tenant whose quota `bytes` is, if it is one.
    quota_of: Option<String>,
}

impl NamespaceLimit {
    pub(super) fn new(engine_limit: usize, quota: Option<u64>, tenant: &Tenant) -> Self {
        match quota.map(|q| usize::try_from(q).unwrap_or(usize::MAX)) {
            Some(quota) if quota < engine_limit => Self {
                bytes: quota,
                quota_of: Some(tenant.0.clone()),
            },
            _ => Self {
                bytes: engine_limit,
                quota_of: None,
            },
        }
    }

    /// `engine_limit` alone.
    #[cfg(test)]
    fn engine(engine_limit: usize) -> Self {
        Self {
            bytes: engine_limit,
            quota_of: None,
        }
    }

    fn describe(&self) -> String {
        match &self.quota_of {
            Some(tenant) => format!(
                "tenant {tenant}'s namespace quota (namespace_bytes = {} per engine; wasp tenant \
                 set {tenant} --max-namespace-bytes SIZE)",
                crate::limits::bytes(self.bytes)
            ),
            None => format!(
                "its limit (namespace_bytes = {})",
                crate::limits::bytes(self.bytes)
            ),
        }
    }
}

/// Push, pull or clear in a tenant's namespace, within `limit`.
pub(super) fn apply_namespace_op(
    engine: EngineId,
    namespace: &mut Namespace,
    limit: &NamespaceLimit,
    op: NamespaceOp,
) -> NamespaceReply {
    match op {
        NamespaceOp::Push(entries) => {
            // Decoded here, not by the controller, which forwards the
            // bytes; every value is checked for depth as it is decoded,
            // and the whole against the namespace limit below.
            let entries = entries.decode_sharing().map_err(|err| {
                format!("engine {engine}: the pushed values do not decode: {err}")
            })?;
            // A name given twice keeps its last value, so each name counts
            // once: what it frees now and what its last value adds.
            let mut last: HashMap<&str, &Value> = HashMap::with_capacity(entries.len());
            for (name, value) in &entries {
                last.insert(name, value);
            }
            let freed: usize = last
                .keys()
                .filter_map(|name| {
                    namespace
                        .values
                        .get(*name)
                        .map(|v| name.len() + v.cost_bytes())
                })
                .sum();
            let added: usize = last
                .iter()
                .map(|(name, v)| name.len() + v.cost_bytes())
                .sum();
            let total = namespace.bytes - freed.min(namespace.bytes) + added;
            if total > limit.bytes {
                return Err(format!(
                    "engine {engine}: the namespace would hold {total} bytes, over {}",
                    limit.describe()
                ));
            }
            namespace.bytes = total;
            namespace.values.extend(entries);
            Ok(Pulled::none())
        }
        NamespaceOp::Pull(names) => {
            // The answer travels in one frame: refuse one that could not.
            let mut size = 0usize;
            let mut values = Vec::with_capacity(names.len().min(namespace.values.len()));
            for name in &names {
                let value = namespace.values.get(name).ok_or_else(|| {
                    format!("engine {engine} has no value named {name:?} in its namespace")
                })?;
                size = size.saturating_add(memory_size(value));
                if size > FRAME_BUDGET {
                    return Err(format!(
                        "engine {engine}: the values pulled are over {} as host memory, more \
                         than one message may carry; pull fewer names at a time",
                        bytes(FRAME_BUDGET)
                    ));
                }
                values.push(value.clone());
            }
            // A big pull straight into a memory file, as a client's push.
            let typed = values.iter().map(Value::typed_bytes).sum();
            Pulled::encode_spilling(&values, wasp_net::same_host::spill_for(typed))
                .map_err(|err| format!("engine {engine}: the values pulled do not encode: {err}"))
        }
        NamespaceOp::Clear => {
            *namespace = Namespace::default();
            Ok(Pulled::none())
        }
        NamespaceOp::Load(_) => Ok(Pulled::none()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasp_proto::msg::Entries;

    fn push(namespace: &mut Namespace, limit: usize, entries: &[(&str, Value)]) -> NamespaceReply {
        let entries: Vec<_> = entries
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect();
        let limit = NamespaceLimit::engine(limit);
        let entries = Entries::encode(&entries).expect("encodes");
        apply_namespace_op(EngineId(0), namespace, &limit, NamespaceOp::Push(entries))
    }

    fn held(namespace: &Namespace) -> usize {
        namespace
            .values
            .iter()
            .map(|(name, value)| name.len() + value.cost_bytes())
            .sum()
    }

    #[test]
    fn a_name_repeated_in_one_push_counts_once() {
        // Issue 10: a name given k times freed its old value k times, so
        // the cap could be bypassed without limit. Fails on main: the
        // second push is accepted and the count drifts below what is held.
        let big = Value::String("x".repeat(600));
        let limit = 1000;
        let mut namespace = Namespace::default();
        push(&mut namespace, limit, &[("a", big.clone())]).expect("fits");
        let tiny = Value::Bool(true);
        let repeated: Vec<(&str, Value)> = std::iter::repeat_n(("a", tiny), 5)
            .chain([("c", big.clone())])
            .collect();
        let reply = push(&mut namespace, limit, &repeated);
        assert_eq!(namespace.bytes, held(&namespace));
        assert!(reply.is_ok(), "a then c fit: {reply:?}");
        let reply = push(&mut namespace, limit, &[("b", big.clone()), ("b", big)]);
        assert!(reply.is_err(), "b does not fit beside c");
        assert_eq!(namespace.bytes, held(&namespace));
        assert!(namespace.bytes <= limit);
    }

    #[test]
    fn a_tenants_namespace_quota_below_the_engines_limit_is_named() {
        let bob = Tenant("bob".into());
        let mut namespace = Namespace::default();
        let limit = NamespaceLimit::new(1 << 20, Some(100), &bob);
        let big = Value::String("x".repeat(200));
        let entries = vec![("a".to_owned(), big)];
        let refused = apply_namespace_op(
            EngineId(3),
            &mut namespace,
            &limit,
            NamespaceOp::Push(Entries::encode(&entries).expect("encodes")),
        );
        let message = refused.expect_err("over the quota");
        assert!(
            message.contains("tenant bob's namespace quota (namespace_bytes = 100 B per engine"),
            "{message}"
        );
        assert!(
            namespace.values.is_empty(),
            "nothing of a refused push is kept"
        );
        // A quota above the engine's own limit changes nothing.
        let loose = NamespaceLimit::new(1 << 20, Some(1 << 30), &bob);
        assert_eq!(loose.bytes, 1 << 20);
        assert!(loose.quota_of.is_none());
    }
}
