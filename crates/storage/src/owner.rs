//! Ownership epochs, sealing and the tip watch of one log, shared by both shard logs.

use kinesin_log::LogId;
use tokio::sync::{watch, RwLock, RwLockReadGuard};

use crate::error::ShardLogError;
use crate::shard_log::{Epoch, TipWatch};

pub(crate) struct Owner {
    epoch: Epoch,
    sealed: Option<u64>,
}

/// Appends hold the gate shared for their whole run; `acquire` and `seal` take it exclusively,
/// so they wait for the appends in flight and no append admitted under an old epoch (or before
/// the seal) can land after them.
pub(crate) struct Ownership {
    gate: RwLock<Owner>,
    tip: watch::Sender<u64>,
}

impl Ownership {
    pub fn new(tip: u64) -> Ownership {
        Ownership { gate: RwLock::new(Owner { epoch: Epoch(0), sealed: None }), tip: watch::Sender::new(tip) }
    }

    /// Admits an append under `epoch`; hold the guard until the append is done.
    pub async fn admit(&self, id: LogId, epoch: Epoch) -> Result<RwLockReadGuard<'_, Owner>, ShardLogError> {
        let owner = self.gate.read().await;
        if owner.epoch != epoch {
            return Err(ShardLogError::Fenced { id, held: epoch, current: owner.epoch });
        }
        if let Some(end) = owner.sealed {
            return Err(ShardLogError::Sealed { id, end });
        }
        Ok(owner)
    }

    pub async fn acquire(&self) -> Epoch {
        let mut owner = self.gate.write().await;
        owner.epoch = Epoch(owner.epoch.0 + 1);
        owner.epoch
    }

    /// Seals at the tip `tip()` reads once the appends in flight are done.
    pub async fn seal(
        &self,
        id: LogId,
        epoch: Epoch,
        tip: impl FnOnce() -> Result<u64, ShardLogError>,
    ) -> Result<u64, ShardLogError> {
        let mut owner = self.gate.write().await;
        if owner.epoch != epoch {
            return Err(ShardLogError::Fenced { id, held: epoch, current: owner.epoch });
        }
        if let Some(end) = owner.sealed {
            return Ok(end);
        }
        let end = tip()?;
        owner.sealed = Some(end);
        drop(owner);
        // Watchers look again and find the end.
        self.tip.send_modify(|_| {});
        Ok(end)
    }

    /// Records that the tip reached `tip` (appends may finish out of order).
    pub fn advanced(&self, tip: u64) {
        self.tip.send_if_modified(|current| {
            if tip > *current {
                *current = tip;
                true
            } else {
                false
            }
        });
    }

    pub fn watch(&self) -> TipWatch {
        TipWatch::new(self.tip.subscribe())
    }
}
