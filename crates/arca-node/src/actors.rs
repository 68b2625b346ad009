//! Per-key actors: one tokio task per active key owns that key's unwrapped
//! material and serves its crypto requests one at a time.
//!
//! - A cloneable [`KeyHandle`] holds the bounded mailbox; a full mailbox is
//!   [`NodeError::Throttled`] for the caller, never a growing queue.
//! - Before each request the actor compares the key's `revision` in the applied
//!   state with the one it loaded; if the key changed, it reloads first. A state
//!   change is therefore seen by every request that starts after it was applied
//!   — and settled: a revision above the node's settled index is not served
//!   (see `SharedState::safe_index`).
//! - Once loaded, the actor publishes the material for the revision it was
//!   loaded at. An asymmetric or HMAC operation on a key whose published
//!   material matches the key's current, settled revision and whose state
//!   allows crypto is run on the caller's own task (the same check the actor
//!   makes) without a hand-off: a hot signing key uses every core instead of
//!   its actor's one. Anything else (first use, a changed or unsettled key, a
//!   refusal) goes through the mailbox, where the actor reloads and answers.
//!   Symmetric operations always go through the actor: AES-GCM of a few KiB
//!   takes a microsecond or two, so one actor serves a key at hundreds of
//!   thousands of requests per second, and measured over HTTP the hand-off
//!   costs less than answering each request alone (docs/performance.md,
//!   "A hot key").
//! - An actor idle for `idle_timeout` (no request through its mailbox or on
//!   the callers' path) withdraws its material and stops; the material is
//!   zeroized once the last request using it is done.
//! - If an actor panics, its callers get an internal error, and the registry
//!   starts a new actor for the key on the next request.
//!
//! Symmetric operations on ≤ 4 KiB take microseconds, so they run on the
//! actor's task; operations that take milliseconds or more (RSA, key
//! generation) belong on the blocking pool.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arca_crypto::symmetric::{self, AesKey};
use arca_crypto::wrap::{RootKeyRing, WrapContext};
use arca_crypto::SecretBytes;
use arca_keys::{
    EncapsulationAlgorithm, EncryptionAlgorithm, KeyAgreementAlgorithm, MacAlgorithm, MessageType,
    PrivateKey, SigningAlgorithm,
};
use arca_state::{KeyId, KeySpec, KeyState};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::store::SharedState;
use crate::NodeError;

pub type Context = BTreeMap<String, String>;

/// The purpose label under which key material is wrapped.
pub const MATERIAL_PURPOSE: &str = "key-material";

pub fn material_context(key_id: &KeyId, version: u32) -> WrapContext<'_> {
    WrapContext {
        purpose: MATERIAL_PURPOSE,
        id: key_id.as_bytes(),
        version,
    }
}

/// Rejects crypto on a key whose state forbids it, with AWS's errors.
pub fn check_usable(key_id: KeyId, state: KeyState) -> Result<(), NodeError> {
    match state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(NodeError::Disabled(format!("Key '{key_id}' is disabled."))),
        KeyState::PendingDeletion => Err(NodeError::InvalidState(format!(
            "Key '{key_id}' is pending deletion."
        ))),
        KeyState::PendingImport => Err(NodeError::InvalidState(format!(
            "Key '{key_id}' is pending import."
        ))),
    }
}

pub enum Request {
    Encrypt {
        plaintext: SecretBytes,
        context: Context,
        reply: oneshot::Sender<Result<Encrypted, NodeError>>,
    },
    Decrypt {
        blob: Vec<u8>,
        context: Context,
        reply: oneshot::Sender<Result<SecretBytes, NodeError>>,
    },
    GenerateDataKey {
        len: usize,
        context: Context,
        reply: oneshot::Sender<Result<(SecretBytes, Encrypted), NodeError>>,
    },
    /// An operation with an asymmetric or HMAC key, on a version (default: the primary).
    Keys {
        version_id: Option<String>,
        op: KeyOp,
        reply: oneshot::Sender<Result<(KeyOut, String), NodeError>>,
    },
    /// Makes the actor panic; for testing supervision only.
    #[cfg(test)]
    Panic,
}

impl Request {
    /// Requests served on the caller's task when the key's material is
    /// published (see the module's documentation).
    fn on_callers_path(&self) -> bool {
        matches!(self, Request::Keys { .. })
    }

    /// Answers the request with `e`.
    fn fail(self, e: NodeError) {
        match self {
            Request::Encrypt { reply, .. } => drop(reply.send(Err(e))),
            Request::Decrypt { reply, .. } => drop(reply.send(Err(e))),
            Request::GenerateDataKey { reply, .. } => drop(reply.send(Err(e))),
            Request::Keys { reply, .. } => drop(reply.send(Err(e))),
            #[cfg(test)]
            Request::Panic => panic!("requested panic"),
        }
    }
}

/// Operations of asymmetric and HMAC keys.
pub enum KeyOp {
    Sign {
        alg: SigningAlgorithm,
        message: Vec<u8>,
        kind: MessageType,
    },
    Verify {
        alg: SigningAlgorithm,
        message: Vec<u8>,
        kind: MessageType,
        signature: Vec<u8>,
    },
    Encrypt {
        alg: EncryptionAlgorithm,
        plaintext: SecretBytes,
    },
    Decrypt {
        alg: EncryptionAlgorithm,
        ciphertext: Vec<u8>,
    },
    Mac {
        alg: MacAlgorithm,
        message: Vec<u8>,
    },
    VerifyMac {
        alg: MacAlgorithm,
        message: Vec<u8>,
        mac: Vec<u8>,
    },
    /// ECDH with a peer's SubjectPublicKeyInfo DER; the result is a secret.
    DeriveSharedSecret {
        alg: KeyAgreementAlgorithm,
        public_key: Vec<u8>,
    },
    /// ML-KEM encapsulation to the key's public half: a fresh secret and its ciphertext.
    Encapsulate {
        alg: EncapsulationAlgorithm,
    },
    /// ML-KEM decapsulation; the result is a secret.
    Decapsulate {
        alg: EncapsulationAlgorithm,
        ciphertext: Vec<u8>,
    },
}

impl KeyOp {
    /// RSA and SM2 private-key operations take from 70 µs to milliseconds,
    /// ML-DSA signing a few hundred µs (RAW) to tens of ms (EXTERNAL_MU), and
    /// ML-DSA verification over an external mu a few ms: they run on the
    /// blocking pool; everything else (ECDSA signing takes ~12 µs) costs less
    /// than handing it to another thread.
    fn is_heavy(&self, spec: KeySpec) -> bool {
        let private = matches!(
            self,
            KeyOp::Sign { .. } | KeyOp::Decrypt { .. } | KeyOp::DeriveSharedSecret { .. }
        ) && (spec.rsa_bits().is_some() || spec == KeySpec::Sm2);
        let ml_dsa = matches!(
            self,
            KeyOp::Sign { .. }
                | KeyOp::Verify {
                    kind: MessageType::ExternalMu,
                    ..
                }
        ) && spec.is_ml_dsa();
        private || ml_dsa
    }

    /// Runs on the first key; a Decrypt given several keys returns the
    /// first that decrypts, or the first key's error.
    fn run_first(self, keys: &[(Arc<PrivateKey>, String)]) -> Result<(KeyOut, String), NodeError> {
        let ((first, first_id), rest) = keys
            .split_first()
            .ok_or_else(|| NodeError::Internal("no key to run on".into()))?;
        match self {
            KeyOp::Decrypt { alg, ciphertext } if !rest.is_empty() => {
                let err = match first.decrypt(alg, &ciphertext) {
                    Ok(pt) => return Ok((KeyOut::Secret(pt), first_id.clone())),
                    Err(e) => e,
                };
                for (key, id) in rest {
                    if let Ok(pt) = key.decrypt(alg, &ciphertext) {
                        return Ok((KeyOut::Secret(pt), id.clone()));
                    }
                }
                Err(err.into())
            }
            op => op.run(first).map(|o| (o, first_id.clone())),
        }
    }

    fn run(self, key: &PrivateKey) -> Result<KeyOut, NodeError> {
        let out = match self {
            KeyOp::Sign { alg, message, kind } => KeyOut::Bytes(key.sign(alg, &message, kind)?),
            KeyOp::Verify {
                alg,
                message,
                kind,
                signature,
            } => KeyOut::Valid(key.verify(alg, &message, kind, &signature)?),
            KeyOp::Encrypt { alg, plaintext } => {
                KeyOut::Bytes(key.encrypt(alg, plaintext.expose())?)
            }
            KeyOp::Decrypt { alg, ciphertext } => KeyOut::Secret(key.decrypt(alg, &ciphertext)?),
            KeyOp::Mac { alg, message } => KeyOut::Bytes(key.mac(alg, &message)?),
            KeyOp::VerifyMac { alg, message, mac } => {
                KeyOut::Valid(key.verify_mac(alg, &message, &mac)?)
            }
            KeyOp::DeriveSharedSecret { alg, public_key } => {
                KeyOut::Secret(key.derive_shared_secret(alg, &public_key)?)
            }
            KeyOp::Encapsulate { alg } => {
                let (ciphertext, secret) = key.encapsulate(alg)?;
                KeyOut::Encapsulated { ciphertext, secret }
            }
            KeyOp::Decapsulate { alg, ciphertext } => {
                KeyOut::Secret(key.decapsulate(alg, &ciphertext)?)
            }
        };
        Ok(out)
    }
}

/// What a [`KeyOp`] returns.
pub enum KeyOut {
    Bytes(Vec<u8>),
    Secret(SecretBytes),
    Valid(bool),
    /// A shared secret and the ciphertext that carries it (Encapsulate).
    Encapsulated {
        ciphertext: Vec<u8>,
        secret: SecretBytes,
    },
}

/// A ciphertext and the key version that made it.
pub struct Encrypted {
    pub blob: Vec<u8>,
    pub version: u32,
}

#[derive(Clone)]
pub struct KeyHandle {
    tx: mpsc::Sender<Request>,
    published: Arc<Published>,
}

/// What a key's actor has loaded, shared with the callers' path.
#[derive(Default)]
struct Published {
    loaded: RwLock<Option<Arc<Loaded>>>,
    /// Set by each request served on the callers' path, so that the actor
    /// does not stop as idle while its key is in use.
    used: AtomicBool,
}

impl Published {
    fn get(&self) -> Option<Arc<Loaded>> {
        self.loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set(&self, loaded: Option<Arc<Loaded>>) {
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = loaded;
    }
}

/// Finds or starts the actor for a key.
pub struct Registry {
    actors: RwLock<HashMap<KeyId, KeyHandle>>,
    shared: Arc<SharedState>,
    root: Arc<RootKeyRing>,
    mailbox: usize,
    idle_timeout: Duration,
    heavy: Arc<Semaphore>,
    settle_wait: Duration,
}

impl Registry {
    /// `mailbox` (at least 1) bounds each key's queue; `heavy` (at least 1)
    /// bounds RSA and SM2 private-key operations and key generations in
    /// flight across all keys.
    pub fn new(
        shared: Arc<SharedState>,
        root: Arc<RootKeyRing>,
        mailbox: usize,
        idle_timeout: Duration,
        heavy: usize,
    ) -> Self {
        Self {
            actors: RwLock::new(HashMap::new()),
            shared,
            root,
            mailbox: mailbox.max(1),
            idle_timeout,
            heavy: Arc::new(Semaphore::new(heavy.max(1))),
            settle_wait: Duration::from_secs(2),
        }
    }

    /// How long an actor waits for a newly applied change of its key to
    /// settle before it answers a request (see `KeyActor::run`).
    pub fn with_settle_wait(mut self, wait: Duration) -> Self {
        self.settle_wait = wait;
        self
    }

    /// A slot for heavy crypto (RSA, SM2, key generation), or `Throttled`
    /// when all are taken.
    pub fn heavy_permit(&self) -> Result<OwnedSemaphorePermit, NodeError> {
        self.heavy
            .clone()
            .try_acquire_owned()
            .map_err(|_| NodeError::Throttled)
    }

    /// The number of running actors.
    pub fn active(&self) -> usize {
        let mut map = self.actors.write().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, h| !h.tx.is_closed());
        map.len()
    }

    fn handle(&self, key_id: KeyId) -> KeyHandle {
        let mut map = self.actors.write().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = map.get(&key_id) {
            if !h.tx.is_closed() {
                return h.clone();
            }
        }
        let (tx, rx) = mpsc::channel(self.mailbox);
        let published = Arc::new(Published::default());
        let actor = KeyActor {
            key_id,
            shared: self.shared.clone(),
            root: self.root.clone(),
            heavy: self.heavy.clone(),
            loaded: None,
            published: published.clone(),
        };
        tokio::spawn(actor.run(rx, self.idle_timeout, self.settle_wait));
        let h = KeyHandle { tx, published };
        map.insert(key_id, h.clone());
        h
    }

    /// The material the key's running actor has published, if it is that of
    /// the key's current revision, that revision is settled here, and the
    /// key's state allows crypto: exactly what the actor checks before it
    /// serves a request from what it has loaded. `None` while requests wait
    /// in the actor's mailbox, too.
    fn published(&self, key_id: KeyId) -> Option<Arc<Loaded>> {
        let map = self.actors.read().unwrap_or_else(|p| p.into_inner());
        let h = map.get(&key_id)?;
        // A request does not overtake those queued before it.
        if h.tx.is_closed() || h.tx.capacity() < h.tx.max_capacity() {
            return None;
        }
        let loaded = h.published.get()?;
        let current = {
            let a = self.shared.read();
            let k = a.state.keys.get(&key_id)?;
            k.revision == loaded.revision && k.state == KeyState::Enabled
        };
        if !current || loaded.revision > self.shared.safe_index() {
            return None;
        }
        h.published.used.store(true, Ordering::Relaxed);
        Some(loaded)
    }

    /// Serves a request: an asymmetric or HMAC operation on the caller's
    /// task from the material the key's actor has published when that is
    /// current (see [`Registry::published`]), anything else through the
    /// actor's mailbox. Starts the actor if it is not
    /// running (never started, stopped when idle, or died); a full mailbox
    /// is `Throttled`.
    pub fn send(&self, key_id: KeyId, req: Request) -> Result<(), NodeError> {
        if req.on_callers_path() {
            if let Some(loaded) = self.published(key_id) {
                loaded.serve(key_id, req, &self.heavy);
                return Ok(());
            }
        }
        let mut req = req;
        for _ in 0..2 {
            match self.handle(key_id).tx.try_send(req) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Full(_)) => return Err(NodeError::Throttled),
                // The actor stopped between lookup and send: start another, once.
                Err(mpsc::error::TrySendError::Closed(r)) => req = r,
            }
        }
        Err(NodeError::Internal("key actor could not be started".into()))
    }
}

/// The material of one key, unwrapped, with the revision it was loaded at.
/// One version's usable key.
enum Material {
    Aes(AesKey),
    Keys(Arc<PrivateKey>),
}

pub struct Loaded {
    revision: u64,
    primary: u32,
    keys: BTreeMap<u32, Material>,
    /// Version id → version.
    ids: HashMap<String, u32>,
}

struct KeyActor {
    key_id: KeyId,
    shared: Arc<SharedState>,
    root: Arc<RootKeyRing>,
    heavy: Arc<Semaphore>,
    loaded: Option<Arc<Loaded>>,
    published: Arc<Published>,
}

impl KeyActor {
    async fn run(mut self, mut rx: mpsc::Receiver<Request>, idle: Duration, settle: Duration) {
        loop {
            match tokio::time::timeout(idle, rx.recv()).await {
                Ok(Some(req)) => {
                    // A request that meets a change not yet settled waits
                    // for it, then is served from it (or refused past the wait).
                    if let Err((req, revision)) = self.serve(req) {
                        self.settled(revision, settle).await;
                        if let Err((req, _)) = self.serve(req) {
                            req.fail(NodeError::Unavailable(format!(
                                "Key '{}' is being changed; retry",
                                self.key_id
                            )));
                        }
                    }
                }
                Ok(None) => break,
                // Idle here, but in use on the callers' path: go on.
                Err(_) if self.published.used.swap(false, Ordering::Relaxed) => {}
                Err(_) => {
                    // Idle: withdraw the material from the callers' path,
                    // refuse new requests, serve what is already queued, stop.
                    self.published.set(None);
                    rx.close();
                    while let Ok(req) = rx.try_recv() {
                        if let Err((req, revision)) = self.serve(req) {
                            self.settled(revision, settle).await;
                            if let Err((req, _)) = self.serve(req) {
                                req.fail(NodeError::Unavailable(format!(
                                    "Key '{}' is being changed; retry",
                                    self.key_id
                                )));
                            }
                        }
                    }
                    break;
                }
            }
        }
        tracing::debug!(key_id = %self.key_id, "key actor stopped");
        // `self.loaded` drops here, and the published material is withdrawn
        // (`Drop`): the unwrapped keys are zeroized once no request holds them.
    }

    /// Waits (up to `wait`) until the change at `revision` is settled here.
    async fn settled(&self, revision: u64, wait: Duration) {
        let mut rx = self.shared.safe_watch();
        let _ = tokio::time::timeout(wait, rx.wait_for(|s| *s >= revision)).await;
    }

    /// Reads the key's record once for a request: makes the loaded material
    /// match it, or says that its last change is not settled yet
    /// (`Ok(Some(revision))`: not shown until it is).
    fn refresh(&mut self) -> Result<Option<u64>, NodeError> {
        let (revision, state) = {
            let a = self.shared.read();
            let k = a.state.keys.get(&self.key_id).ok_or_else(|| {
                NodeError::NotFound(format!("Key '{}' does not exist", self.key_id))
            })?;
            (k.revision, k.state)
        };
        if revision > self.shared.safe_index() {
            return Ok(Some(revision));
        }
        check_usable(self.key_id, state)?;
        if self.loaded.as_ref().map(|l| l.revision) != Some(revision) {
            self.loaded = None;
            self.published.set(None);
            let a = self.shared.read();
            let k = a.state.keys.get(&self.key_id).ok_or_else(|| {
                NodeError::NotFound(format!("Key '{}' does not exist", self.key_id))
            })?;
            let mut keys = BTreeMap::new();
            let mut ids = HashMap::new();
            for v in &k.versions {
                let unwrap_failed = |_| {
                    tracing::error!(key_id = %self.key_id, version = v.version, "key material does not unwrap under this node's root key");
                    NodeError::Internal("key material could not be unwrapped".into())
                };
                let ctx = material_context(&self.key_id, v.version);
                let material = if k.spec == KeySpec::SymmetricDefault {
                    Material::Aes(AesKey::new(
                        &self
                            .root
                            .unwrap_key32(&v.wrapped, ctx)
                            .map_err(unwrap_failed)?,
                    ))
                } else {
                    let secret = self.root.unwrap(&v.wrapped, ctx).map_err(unwrap_failed)?;
                    let pk = PrivateKey::load(k.spec, secret.expose()).map_err(|e| {
                        tracing::error!(key_id = %self.key_id, version = v.version, error = %e, "stored key material does not load");
                        NodeError::Internal("key material could not be loaded".into())
                    })?;
                    Material::Keys(Arc::new(pk))
                };
                keys.insert(v.version, material);
                ids.insert(v.version_id.to_string(), v.version);
            }
            let loaded = Arc::new(Loaded {
                revision: k.revision,
                primary: k.primary().version,
                keys,
                ids,
            });
            self.published.set(Some(loaded.clone()));
            self.loaded = Some(loaded);
        }
        Ok(None)
    }

    /// Serves one request from the key's settled state; gives it back with
    /// the revision to wait for if the key's last change is not settled.
    fn serve(&mut self, req: Request) -> Result<(), (Request, u64)> {
        match self.refresh() {
            Ok(None) => {}
            Ok(Some(revision)) => return Err((req, revision)),
            Err(e) => {
                req.fail(e);
                return Ok(());
            }
        }
        match &self.loaded {
            Some(l) => l.serve(self.key_id, req, &self.heavy),
            None => req.fail(NodeError::Internal("key not loaded".into())),
        }
        Ok(())
    }
}

impl Drop for KeyActor {
    /// However the actor ends (idle, shut down, panicked), callers stop
    /// being served from its material.
    fn drop(&mut self) {
        self.published.set(None);
    }
}

impl Loaded {
    /// Answers a request from this material. Runs on the actor's task or on
    /// the caller's ([`Registry::send`]); RSA, SM2 and ML-DSA private-key
    /// operations go to the blocking pool within the `heavy` bound.
    fn serve(&self, key_id: KeyId, req: Request, heavy: &Arc<Semaphore>) {
        match req {
            Request::Encrypt {
                plaintext,
                context,
                reply,
            } => {
                let _ = reply.send(self.encrypt(key_id, plaintext.expose(), &context));
            }
            Request::Decrypt {
                blob,
                context,
                reply,
            } => {
                let _ = reply.send(self.decrypt(key_id, &blob, &context));
            }
            Request::GenerateDataKey {
                len,
                context,
                reply,
            } => {
                let r = SecretBytes::random(len)
                    .map_err(NodeError::from)
                    .and_then(|dk| {
                        let enc = self.encrypt(key_id, dk.expose(), &context)?;
                        Ok((dk, enc))
                    });
                let _ = reply.send(r);
            }
            Request::Keys {
                version_id,
                op,
                reply,
            } => {
                let found = self.private_key(key_id, version_id.as_deref());
                // A ciphertext carries no version: without a version id,
                // Decrypt tries the primary, then the older versions, newest
                // first, so that clients written for AWS (which has no
                // versions) keep working after CreateKeyVersion.
                let found = match (found, &op) {
                    (Ok(primary), KeyOp::Decrypt { .. }) if version_id.is_none() => {
                        Ok(self.older_versions(primary))
                    }
                    (found, _) => found.map(|k| vec![k]),
                };
                match found {
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                    Ok(keys) if op.is_heavy(keys[0].0.spec()) => {
                        // Off the async workers, within the heavy-crypto bound;
                        // the reply is sent from there.
                        match heavy.clone().try_acquire_owned() {
                            Ok(permit) => {
                                tokio::task::spawn_blocking(move || {
                                    let _ = reply.send(op.run_first(&keys));
                                    drop(permit);
                                });
                            }
                            Err(_) => {
                                let _ = reply.send(Err(NodeError::Throttled));
                            }
                        }
                    }
                    Ok(keys) => {
                        let _ = reply.send(op.run_first(&keys));
                    }
                }
            }
            #[cfg(test)]
            Request::Panic => panic!("requested panic"),
        }
    }

    /// `primary`, then every other version's private key, newest first.
    fn older_versions(&self, primary: (Arc<PrivateKey>, String)) -> Vec<(Arc<PrivateKey>, String)> {
        let mut keys = vec![primary];
        let mut others: Vec<(u32, &String)> = self
            .ids
            .iter()
            .filter(|(_, v)| **v != self.primary)
            .map(|(id, v)| (*v, id))
            .collect();
        others.sort_unstable_by_key(|b| std::cmp::Reverse(b.0));
        for (v, id) in others {
            if let Some(Material::Keys(k)) = self.keys.get(&v) {
                keys.push((k.clone(), id.clone()));
            }
        }
        keys
    }

    /// The private key of a version (by id, or the primary) and that version's id.
    fn private_key(
        &self,
        key_id: KeyId,
        version_id: Option<&str>,
    ) -> Result<(Arc<PrivateKey>, String), NodeError> {
        let version = match version_id {
            Some(id) => *self.ids.get(id).ok_or_else(|| {
                NodeError::NotFound(format!(
                    "Key version '{id}' of key '{key_id}' does not exist"
                ))
            })?,
            None => self.primary,
        };
        let vid = self
            .ids
            .iter()
            .find(|(_, v)| **v == version)
            .map(|(id, _)| id.clone())
            .unwrap_or_default();
        match self.keys.get(&version) {
            Some(Material::Keys(k)) => Ok((k.clone(), vid)),
            _ => Err(NodeError::InvalidKeyUsage(format!(
                "Key '{key_id}' is a symmetric encryption key; the operation needs an asymmetric or HMAC key"
            ))),
        }
    }

    fn encrypt(
        &self,
        key_id: KeyId,
        plaintext: &[u8],
        context: &Context,
    ) -> Result<Encrypted, NodeError> {
        let Some(Material::Aes(key)) = self.keys.get(&self.primary) else {
            return Err(NodeError::InvalidKeyUsage(format!(
                "Key '{key_id}' is not a symmetric encryption key"
            )));
        };
        let blob = key.encrypt_blob(*key_id.as_bytes(), self.primary, plaintext, context)?;
        Ok(Encrypted {
            blob,
            version: self.primary,
        })
    }

    fn decrypt(
        &self,
        key_id: KeyId,
        blob: &[u8],
        context: &Context,
    ) -> Result<SecretBytes, NodeError> {
        let header = symmetric::parse_header(blob)?;
        if header.key_id != *key_id.as_bytes() {
            return Err(NodeError::InvalidCiphertext);
        }
        let Some(Material::Aes(key)) = self.keys.get(&header.key_version) else {
            return Err(NodeError::InvalidCiphertext);
        };
        Ok(key.decrypt_blob(blob, context)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StateMachineStore;
    use arca_crypto::Secret;
    use arca_state::{KeyRecord, KeySpec, KeyState, KeyUsage, KeyVersion};

    fn setup(mailbox: usize, idle: Duration) -> (tempfile::TempDir, Registry, KeyId) {
        setup_with_material(mailbox, idle, *Secret::<32>::random().unwrap().expose())
    }

    fn setup_with_material(
        mailbox: usize,
        idle: Duration,
        material: [u8; 32],
    ) -> (tempfile::TempDir, Registry, KeyId) {
        setup_key(
            mailbox,
            idle,
            KeySpec::SymmetricDefault,
            KeyUsage::EncryptDecrypt,
            &material,
        )
    }

    /// A registry with one key of `spec` whose (plain) material is `material`.
    fn setup_key(
        mailbox: usize,
        idle: Duration,
        spec: KeySpec,
        usage: KeyUsage,
        material: &[u8],
    ) -> (tempfile::TempDir, Registry, KeyId) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::open_database(dir.path()).unwrap();
        let sm = StateMachineStore::open(db, Default::default()).unwrap();
        let key = arca_crypto::wrap::RootKey::generate().unwrap().0;
        let id = KeyId::from_random([4; 16]);
        let wrapped = key.wrap(material, material_context(&id, 1)).unwrap();
        let root = Arc::new(RootKeyRing::new(vec![key]).unwrap());
        sm.shared().insert_for_test(KeyRecord::new(
            id,
            String::new(),
            usage,
            spec,
            KeyVersion {
                version: 1,
                version_id: "v1".into(),
                public_key: None,
                wrapped,
                created_ms: 0,
            },
        ));
        let reg = Registry::new(sm.shared(), root, mailbox, idle, 4);
        (dir, reg, id)
    }

    async fn encrypt(reg: &Registry, id: KeyId, pt: &[u8]) -> Result<Encrypted, NodeError> {
        let (tx, rx) = oneshot::channel();
        reg.send(
            id,
            Request::Encrypt {
                plaintext: SecretBytes::new(pt.to_vec()),
                context: Context::new(),
                reply: tx,
            },
        )?;
        rx.await
            .map_err(|_| NodeError::Internal("actor failed".into()))?
    }

    #[tokio::test]
    async fn round_trip_through_actor() {
        let (_d, reg, id) = setup(8, Duration::from_secs(60));
        let e = encrypt(&reg, id, b"hello").await.unwrap();
        let (tx, rx) = oneshot::channel();
        reg.send(
            id,
            Request::Decrypt {
                blob: e.blob,
                context: Context::new(),
                reply: tx,
            },
        )
        .unwrap();
        assert_eq!(rx.await.unwrap().unwrap().expose(), b"hello");
    }

    async fn decrypt(reg: &Registry, id: KeyId, blob: Vec<u8>) -> Result<SecretBytes, NodeError> {
        let (tx, rx) = oneshot::channel();
        reg.send(
            id,
            Request::Decrypt {
                blob,
                context: Context::new(),
                reply: tx,
            },
        )?;
        rx.await
            .map_err(|_| NodeError::Internal("actor failed".into()))?
    }

    /// A registry with one ECC_NIST_P256 signing key.
    fn setup_signing(idle: Duration) -> (tempfile::TempDir, Registry, KeyId) {
        let material = arca_keys::generate(KeySpec::EccNistP256).unwrap();
        setup_key(
            8,
            idle,
            KeySpec::EccNistP256,
            KeyUsage::SignVerify,
            material.expose(),
        )
    }

    type SignReply = oneshot::Receiver<Result<(KeyOut, String), NodeError>>;

    fn sign_request() -> (Request, SignReply) {
        let (tx, rx) = oneshot::channel();
        let op = KeyOp::Sign {
            alg: SigningAlgorithm::EcdsaSha256,
            message: b"message".to_vec(),
            kind: MessageType::Raw,
        };
        let req = Request::Keys {
            version_id: None,
            op,
            reply: tx,
        };
        (req, rx)
    }

    async fn sign(reg: &Registry, id: KeyId) -> Result<Vec<u8>, NodeError> {
        let (req, rx) = sign_request();
        reg.send(id, req)?;
        match rx
            .await
            .map_err(|_| NodeError::Internal("actor failed".into()))??
        {
            (KeyOut::Bytes(sig), _) => Ok(sig),
            _ => Err(NodeError::Internal("not a signature".into())),
        }
    }

    /// Sends a Sign and takes its answer without yielding: `Some` only if it
    /// was served on this task (the actor cannot run until it yields).
    fn sign_here(reg: &Registry, id: KeyId) -> Option<Result<(KeyOut, String), NodeError>> {
        let (req, mut rx) = sign_request();
        reg.send(id, req).unwrap();
        rx.try_recv().ok()
    }

    /// Replaces the key's record with `change` applied to it, as a settled change.
    fn change(reg: &Registry, id: KeyId, change: impl FnOnce(&mut KeyRecord)) {
        let mut k = reg.shared.read().state.keys[&id].clone();
        k.revision += 1;
        change(&mut k);
        reg.shared.insert_for_test(k);
    }

    #[tokio::test]
    async fn a_loaded_signing_key_signs_on_the_callers_task() {
        let (_d, reg, id) = setup_signing(Duration::from_secs(60));
        assert!(
            sign_here(&reg, id).is_none(),
            "a key not loaded yet goes through its actor"
        );
        sign(&reg, id).await.unwrap();
        let (out, version) = sign_here(&reg, id)
            .expect("answered without a hand-off")
            .unwrap();
        assert!(matches!(out, KeyOut::Bytes(ref sig) if !sig.is_empty()));
        assert_eq!(version, "v1");
    }

    #[tokio::test]
    async fn symmetric_requests_go_through_the_actor() {
        let (_d, reg, id) = setup(8, Duration::from_secs(60));
        encrypt(&reg, id, b"warm").await.unwrap();
        let (tx, mut rx) = oneshot::channel();
        reg.send(
            id,
            Request::Encrypt {
                plaintext: SecretBytes::new(b"x".to_vec()),
                context: Context::new(),
                reply: tx,
            },
        )
        .unwrap();
        assert!(rx.try_recv().is_err(), "not answered before the actor ran");
        assert!(rx.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn a_changed_key_goes_back_through_its_actor() {
        let (_d, reg, id) = setup_signing(Duration::from_secs(60));
        sign(&reg, id).await.unwrap();
        assert!(sign_here(&reg, id).is_some());
        change(&reg, id, |k| k.state = KeyState::Disabled);
        assert!(sign_here(&reg, id).is_none());
        assert!(matches!(sign(&reg, id).await, Err(NodeError::Disabled(_))));
        // Still not on the caller's path: the material is that of an older
        // revision.
        assert!(sign_here(&reg, id).is_none());
        change(&reg, id, |k| k.state = KeyState::Enabled);
        sign(&reg, id).await.unwrap();
        assert!(sign_here(&reg, id).unwrap().is_ok());
        // An unsettled change is not served there either.
        let revision = reg.shared.safe_index() + 5;
        reg.shared.change_unsettled_for_test(&id, revision);
        assert!(sign_here(&reg, id).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn an_actor_whose_key_is_in_use_on_the_callers_path_does_not_stop() {
        let (_d, reg, id) = setup_signing(Duration::from_secs(5));
        sign(&reg, id).await.unwrap();
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_secs(3)).await;
            assert!(sign_here(&reg, id).unwrap().is_ok());
        }
        assert_eq!(reg.active(), 1);
        // Unused for two idle periods: stopped, and the material withdrawn.
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(reg.active(), 0);
        assert!(sign_here(&reg, id).is_none());
    }

    #[tokio::test]
    async fn encrypt_and_data_keys_write_the_per_message_key_format() {
        let (_d, reg, id) = setup(8, Duration::from_secs(60));
        let e = encrypt(&reg, id, b"hello").await.unwrap();
        assert_eq!(
            symmetric::parse_header(&e.blob).unwrap().format,
            symmetric::CiphertextFormat::V2
        );
        let (tx, rx) = oneshot::channel();
        reg.send(
            id,
            Request::GenerateDataKey {
                len: 32,
                context: Context::new(),
                reply: tx,
            },
        )
        .unwrap();
        let (dk, enc) = rx.await.unwrap().unwrap();
        let header = symmetric::parse_header(&enc.blob).unwrap();
        assert_eq!(header.format, symmetric::CiphertextFormat::V2);
        assert_eq!(header.key_id, *id.as_bytes());
        assert_eq!(
            enc.blob.len(),
            symmetric::HEADER_LEN_V2 + 32 + symmetric::TAG_LEN
        );
        let opened = decrypt(&reg, id, enc.blob).await.unwrap();
        assert_eq!(opened.expose(), dk.expose());
    }

    /// A ciphertext in the format written before per-message keys (0x01:
    /// AES-256-GCM directly under the version key) still decrypts through the
    /// key's actor.
    #[tokio::test]
    async fn format_v1_ciphertexts_still_decrypt() {
        use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
        let material = [0x42u8; 32];
        let (_d, reg, id) = setup_with_material(8, Duration::from_secs(60), material);
        let nonce = [9u8; 12];
        let mut blob = vec![symmetric::FORMAT_V1];
        blob.extend_from_slice(id.as_bytes());
        blob.extend_from_slice(&1u32.to_be_bytes());
        blob.extend_from_slice(&nonce);
        // AAD: the header and the (empty) canonical context.
        let aad = blob.clone();
        let mut body = b"written by an earlier release".to_vec();
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &material).unwrap())
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad),
                &mut body,
            )
            .unwrap();
        blob.extend_from_slice(&body);
        let opened = decrypt(&reg, id, blob.clone()).await.unwrap();
        assert_eq!(opened.expose(), b"written by an earlier release");
        // And it is still authenticated.
        let last = blob.len() - 1;
        blob[last] ^= 1;
        assert!(matches!(
            decrypt(&reg, id, blob).await,
            Err(NodeError::InvalidCiphertext)
        ));
    }

    #[tokio::test]
    async fn a_request_meeting_an_unsettled_change_waits_for_it() {
        let (_d, reg, id) = setup(8, Duration::from_secs(60));
        encrypt(&reg, id, b"warm").await.unwrap();
        let revision = reg.shared.safe_index() + 5;
        reg.shared.change_unsettled_for_test(&id, revision);
        let reg = Arc::new(reg);
        let mut pending = tokio::spawn({
            let reg = reg.clone();
            async move { encrypt(&reg, id, b"after").await }
        });
        // Not answered while the change is unsettled...
        assert!(
            tokio::time::timeout(Duration::from_millis(100), &mut pending)
                .await
                .is_err(),
            "answered before the change settled"
        );
        // ...and answered from it once it settles.
        reg.shared.raise_safe(revision);
        pending.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_change_that_does_not_settle_in_time_is_a_retriable_refusal() {
        let (_d, reg, id) = setup(8, Duration::from_secs(60));
        let reg = reg.with_settle_wait(Duration::from_millis(20));
        reg.shared
            .change_unsettled_for_test(&id, reg.shared.safe_index() + 1);
        match encrypt(&reg, id, b"x").await {
            Err(NodeError::Unavailable(m)) => assert!(m.contains("being changed"), "{m}"),
            other => panic!("expected Unavailable, got {:?}", other.map(|_| ())),
        }
    }

    #[tokio::test]
    async fn panicking_actor_fails_its_caller_and_is_restarted() {
        let (_d, reg, id) = setup(8, Duration::from_secs(60));
        encrypt(&reg, id, b"warm").await.unwrap();
        let (tx, rx) = oneshot::channel();
        reg.send(id, Request::Panic).unwrap();
        reg.send(
            id,
            Request::Encrypt {
                plaintext: SecretBytes::new(b"queued".to_vec()),
                context: Context::new(),
                reply: tx,
            },
        )
        .unwrap();
        assert!(
            rx.await.is_err(),
            "the queued request's caller sees the failure"
        );
        // The next request gets a new actor.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match encrypt(&reg, id, b"again").await {
                Ok(_) => break,
                Err(_) if tokio::time::Instant::now() < deadline => tokio::task::yield_now().await,
                Err(e) => panic!("actor not restarted: {e:?}"),
            }
        }
    }

    #[tokio::test]
    async fn full_mailbox_throttles() {
        let (_d, reg, id) = setup(1, Duration::from_secs(60));
        // Occupy the actor on this single-threaded runtime: it cannot run until we yield.
        let mut rxs = Vec::new();
        let mut throttled = false;
        for _ in 0..4 {
            let (tx, rx) = oneshot::channel();
            match reg.send(
                id,
                Request::Encrypt {
                    plaintext: SecretBytes::new(vec![1]),
                    context: Context::new(),
                    reply: tx,
                },
            ) {
                Ok(()) => rxs.push(rx),
                Err(NodeError::Throttled) => throttled = true,
                Err(e) => panic!("{e:?}"),
            }
        }
        assert!(throttled);
        for rx in rxs {
            assert!(rx.await.unwrap().is_ok());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn idle_actor_stops() {
        let (_d, reg, id) = setup(8, Duration::from_secs(5));
        encrypt(&reg, id, b"x").await.unwrap();
        assert_eq!(reg.active(), 1);
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(reg.active(), 0);
        encrypt(&reg, id, b"y").await.unwrap();
        assert_eq!(reg.active(), 1);
    }
}
