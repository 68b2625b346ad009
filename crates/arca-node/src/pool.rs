//! A small pool of pre-generated RSA keys per size, refilled in the
//! background, so that CreateKey for RSA answers in milliseconds (RSA-4096
//! generation takes up to a second). Pooled keys are held wrapped under the
//! root key, like all other material, and unwrapped only when taken.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use arca_crypto::wrap::{RootKeyRing, WrapContext};
use arca_crypto::SecretBytes;
use arca_keys::KeySpec;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const POOL_PURPOSE: &str = "key-pool";
pub const RSA_SPECS: [KeySpec; 3] = [KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::Rsa4096];

fn ctx(id: &[u8; 16]) -> WrapContext<'_> {
    WrapContext {
        purpose: POOL_PURPOSE,
        id,
        version: 0,
    }
}

/// A pooled key: its entry id (bound into the wrapping) and the wrapped PKCS#8.
type Pooled = ([u8; 16], Vec<u8>);

pub struct RsaPool {
    target: usize,
    root: Arc<RootKeyRing>,
    /// spec → (entry id, wrapped PKCS#8)
    slots: Mutex<HashMap<KeySpec, VecDeque<Pooled>>>,
    taken: Notify,
}

impl RsaPool {
    /// `target` keys per RSA size (0 turns the pool off).
    pub fn new(target: usize, root: Arc<RootKeyRing>) -> Arc<Self> {
        Arc::new(Self {
            target,
            root,
            slots: Mutex::new(HashMap::new()),
            taken: Notify::new(),
        })
    }

    pub fn len(&self, spec: KeySpec) -> usize {
        let s = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        s.get(&spec).map_or(0, VecDeque::len)
    }

    /// A pre-generated key of `spec` (PKCS#8), if one is ready.
    pub fn take(&self, spec: KeySpec) -> Option<SecretBytes> {
        let entry = {
            let mut s = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            s.get_mut(&spec)?.pop_front()?
        };
        self.taken.notify_one();
        let (id, wrapped) = entry;
        match self.root.unwrap(&wrapped, ctx(&id)) {
            Ok(k) => Some(k),
            Err(_) => {
                tracing::error!("a pooled key did not unwrap; discarding it");
                None
            }
        }
    }

    /// Keeps every RSA size at `target` keys until `shutdown`.
    pub async fn refill(self: Arc<Self>, shutdown: CancellationToken) {
        if self.target == 0 {
            return;
        }
        loop {
            let mut made = false;
            for spec in RSA_SPECS {
                if self.len(spec) >= self.target {
                    continue;
                }
                let generated =
                    tokio::task::spawn_blocking(move || arca_keys::generate(spec)).await;
                let key = match generated {
                    Ok(Ok(k)) => k,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "RSA key generation for the pool failed");
                        continue;
                    }
                    Err(_) => return,
                };
                let Ok(id) = arca_crypto::random::bytes16() else {
                    continue;
                };
                let Ok(wrapped) = self.root.first().wrap(key.expose(), ctx(&id)) else {
                    continue;
                };
                drop(key);
                let mut s = self.slots.lock().unwrap_or_else(|p| p.into_inner());
                s.entry(spec).or_default().push_back((id, wrapped));
                made = true;
            }
            if !made {
                tokio::select! {
                    _ = self.taken.notified() => {}
                    _ = shutdown.cancelled() => return,
                }
            }
            if shutdown.is_cancelled() {
                return;
            }
        }
    }
}
