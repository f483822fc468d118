//! wasp's Rust client, with ipyparallel's names and meanings: a
//! [`Client`] connects to a controller; a [`LoadBalancedView`] lets the
//! scheduler place tasks; a [`DirectView`] names engines; every submission
//! returns an [`AsyncResult`] whose results can be awaited, iterated as they
//! arrive, and timed (`wall_time`, `serial_time`, `elapsed`).
//!
//! A remote failure arrives as a [`RemoteError`]: which task, which engine,
//! what went wrong. Arguments are checked against the function's WIT
//! signature (read from the component, see [`Module`]) before anything is
//! sent.
//!
//! # Layout
//! - [`client`]: [`Client`], the connection and its reader/writer tasks.
//! - [`view`]: [`LoadBalancedView`], [`DirectView`].
//! - `plan`: what a submission sends, checked and encoded task by task.
//! - [`async_result`]: [`AsyncResult`], the results of a submission.
//! - `db`: the task database on [`Client`] (`get_result`, `abort`,
//!   `resubmit`, `db_query`, ...), any client of a tenant seeing all its
//!   tasks. A client that disconnects leaves its tasks running and their
//!   results in the database, as in ipyparallel.
//! - `tenants`: tenant administration on [`Client`] (`tenants`,
//!   `add_tenant`, `set_tenant_weight`, `remove_tenant`), for admins.
//! - [`module`]: [`Module`], a component's bytes, content hash and exported
//!   signatures, read without compiling it.
//! - [`error`]: [`ClientError`], [`RemoteError`].

pub mod async_result;
pub mod client;
mod db;
pub mod error;
pub mod module;
mod plan;
mod tenants;
pub mod view;

pub use async_result::AsyncResult;
pub use client::Client;
pub use error::{ClientError, RemoteError};
pub use module::Module;
pub use view::{DirectView, LoadBalancedView, TaskFlags, partition};
pub use wasp_proto::db::{Query, Status, TaskRecord};
pub use wasp_proto::msg::{Arg, Quotas, RetryPolicy, TenantInfo};

/// An argument that each engine replaces with its own namespace value of
/// `name` (ipyparallel's `parallel.Reference`).
pub fn reference(name: &str) -> Arg {
    Arg::Ref(name.to_owned())
}
