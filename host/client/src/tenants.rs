//! Tenant administration on [`Client`], for admin tokens (`wasp tenant`):
//! list, add, reweigh and remove the tenants of a running controller. Each
//! change is in force at once and written to the controller's tenants
//! file, so it holds across restarts.

use std::path::PathBuf;

use wasp_proto::msg::{Answer, Quotas, Request, TenantInfo, TenantRequest};

use crate::client::Client;
use crate::error::ClientError;

impl Client {
    async fn tenant_request(&self, request: TenantRequest) -> Result<Answer, ClientError> {
        self.ask(Request::Tenants(request)).await
    }

    /// Every tenant, its weight and its work since the controller started.
    pub async fn tenants(&self) -> Result<Vec<TenantInfo>, ClientError> {
        match self.tenant_request(TenantRequest::List).await? {
            Answer::Tenants(tenants) => Ok(tenants),
            other => Err(ClientError::Controller(format!(
                "unexpected answer: {other:?}"
            ))),
        }
    }

    /// Adds a tenant (not an admin) of fair-share `weight`; returns the
    /// path of its connection file, written by the controller on its host
    /// (mode 0600), which its users connect with.
    pub async fn add_tenant(&self, name: &str, weight: u32) -> Result<PathBuf, ClientError> {
        self.add_tenant_with(name, weight, Quotas::default()).await
    }

    /// Adds a tenant as [`add_tenant`](Self::add_tenant) does, with its own
    /// `quotas` (those left `None` are the controller's defaults).
    pub async fn add_tenant_with(
        &self,
        name: &str,
        weight: u32,
        quotas: Quotas,
    ) -> Result<PathBuf, ClientError> {
        let request = TenantRequest::Add {
            name: name.to_owned(),
            weight,
            quotas,
        };
        match self.tenant_request(request).await? {
            Answer::TenantAdded { file, .. } => Ok(PathBuf::from(file)),
            other => Err(ClientError::Controller(format!(
                "unexpected answer: {other:?}"
            ))),
        }
    }

    /// Gives a tenant a new fair-share weight; returns the tenants after.
    pub async fn set_tenant_weight(
        &self,
        name: &str,
        weight: u32,
    ) -> Result<Vec<TenantInfo>, ClientError> {
        self.set_tenant(name, Some(weight), Quotas::default()).await
    }

    /// Changes a tenant's weight (if `Some`) and the quotas `quotas` sets
    /// (the others are kept); in force at once. Returns the tenants after.
    pub async fn set_tenant(
        &self,
        name: &str,
        weight: Option<u32>,
        quotas: Quotas,
    ) -> Result<Vec<TenantInfo>, ClientError> {
        let request = TenantRequest::Set {
            name: name.to_owned(),
            weight,
            quotas,
        };
        self.tenants_after(request).await
    }

    /// Revokes a tenant at once: its clients are disconnected, its
    /// unfinished tasks aborted, its token refused from now on; its
    /// records are kept. Returns the tenants after.
    pub async fn remove_tenant(&self, name: &str) -> Result<Vec<TenantInfo>, ClientError> {
        let request = TenantRequest::Remove {
            name: name.to_owned(),
        };
        self.tenants_after(request).await
    }

    async fn tenants_after(&self, request: TenantRequest) -> Result<Vec<TenantInfo>, ClientError> {
        match self.tenant_request(request).await? {
            Answer::Tenants(tenants) => Ok(tenants),
            other => Err(ClientError::Controller(format!(
                "unexpected answer: {other:?}"
            ))),
        }
    }
}
