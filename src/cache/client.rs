//! [`TokenClient`]: what every token of one client shares — endpoint, storage, cool-down.
//!
//! A rate limit concerns the client, not one of its grants: the cool-down is kept here, and
//! every slot honours it; so is the client's token quota. An organization's quota, and a
//! cool-down read from the storage for one key, are the slot's.

use std::fmt;
use std::sync::Arc;

use crate::cache::CacheSettings;
use crate::cache::cool_down::CoolDown;
use crate::cache::fault_log::{FaultLog, WARNING_INTERVAL};
use crate::cache::quota::QuotaWatch;
use crate::cache::storage_breaker::StorageBreaker;
use crate::endpoint::TokenEndpoint;
use crate::grant::Grant;
use crate::storage::{KeyParts, MemoryStorage, StorageKey, TokenStorage};

/// One client of the authorization server (token endpoint, client id, credentials) and what its
/// slots share.
pub(crate) struct TokenClient {
    pub(crate) endpoint: TokenEndpoint,
    pub(crate) storage: Arc<dyn TokenStorage>,
    /// The storage, when it is the `MemoryStorage` made for this client alone: a slot evicted
    /// from the map takes its token out of it, so that memory stays bounded.
    pub(crate) own_memory: Option<MemoryStorage>,
    pub(crate) settings: CacheSettings,
    pub(crate) cool_down: CoolDown,
    pub(crate) faults: FaultLog,
    pub(crate) breaker: Arc<StorageBreaker>,
    /// The client's token quota (Auth0), as last reported.
    pub(crate) quota: QuotaWatch,
    client_id: String,
    dpop_thumbprint: Option<String>,
}

impl TokenClient {
    /// A client whose tokens go to `storage`; `own_memory` when that is a storage of its own.
    pub(crate) fn new(
        endpoint: TokenEndpoint,
        storage: Arc<dyn TokenStorage>,
        own_memory: Option<MemoryStorage>,
        settings: CacheSettings,
        client_id: String,
        dpop_thumbprint: Option<String>,
    ) -> Self {
        Self {
            endpoint,
            storage,
            own_memory,
            settings,
            cool_down: CoolDown::default(),
            faults: FaultLog::new(WARNING_INTERVAL),
            breaker: Arc::default(),
            quota: QuotaWatch::default(),
            client_id,
            dpop_thumbprint,
        }
    }

    /// Where `grant`'s token is stored: the same for every process with this client and grant.
    pub(crate) fn key_for(&self, grant: &Grant) -> StorageKey {
        StorageKey::new(
            &self.endpoint.url,
            &self.client_id,
            grant,
            KeyParts {
                bearer_subject: self.endpoint.subject(),
                dpop_thumbprint: self.dpop_thumbprint.as_deref(),
            },
        )
    }

    /// Takes `key`'s token out of this client's own memory storage, if it has one: the slot
    /// for it is gone.
    pub(crate) fn forget(&self, key: &StorageKey) {
        if let Some(memory) = &self.own_memory {
            memory.forget(key.as_str());
        }
    }
}

impl fmt::Debug for TokenClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenClient")
            .field("token_endpoint", &self.endpoint.display)
            .field("client_auth", &self.endpoint.client_auth)
            .field("timing", &self.settings.timing)
            .field("lease_ttl", &self.settings.lease_ttl)
            .finish_non_exhaustive()
    }
}
