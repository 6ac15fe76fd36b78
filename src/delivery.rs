//! `NativeDelivery`: one delivered interval, held natively until JS lets it go. Its trees are
//! written as JSON text only when JS asks for them (the delivery object's lazy properties), so a
//! delivery whose trees nobody reads costs the master no rendering and no parsing.

use napi::bindgen_prelude::{Env, ObjectFinalize};
use napi_derive::napi;
use panoptic_core::gather::intake::drop_later;
use panoptic_core::gather::{Delivery, Tree};

/// One delivered interval (made by `NativeEngine#deliver`).
#[napi(custom_finalize)]
pub struct NativeDelivery {
    delivery: Delivery,
    /// Bytes reported to the JS engine as held by this object (given back when it is collected).
    size: i64,
}

impl NativeDelivery {
    /// Wraps `delivery`, telling the JS garbage collector about the memory it holds, and
    /// `more` bytes (held or given back elsewhere) with it: one report per delivery, since each
    /// one past V8's limit for external memory makes it do a step of marking on the spot.
    pub fn new(env: &Env, delivery: Delivery, more: i64) -> NativeDelivery {
        let size = i64::try_from(delivery.size()).unwrap_or(i64::MAX);
        // Only a hint for the collector's pacing: failing to give it changes nothing else.
        let _ = env.adjust_external_memory(size.saturating_add(more));
        NativeDelivery { delivery, size }
    }
}

impl ObjectFinalize for NativeDelivery {
    fn finalize(self, env: Env) -> napi::Result<()> {
        // Freed off the JS thread (this runs inside a garbage collection).
        drop_later(self.delivery);
        env.adjust_external_memory(-self.size)?;
        Ok(())
    }
}

#[napi]
impl NativeDelivery {
    /// JSON text: `{ master: bool, workers: [id], threads: [label], custom: [{ method, path, id,
    /// leaves }], excluded: [description], meta: { workers: { id: pid }, late, decodeErrors,
    /// dropped, errors } }`.
    #[napi(catch_unwind)]
    pub fn outline(&self) -> String {
        self.delivery.outline()
    }

    /// The master's own tree as JSON text (null when it had no interval to deliver).
    #[napi(catch_unwind)]
    pub fn master(&self) -> Option<String> {
        self.delivery.tree(&Tree::Master)
    }

    /// Cluster worker `id`'s tree as JSON text (null when it is not in the delivery).
    #[napi(catch_unwind)]
    pub fn worker(&self, id: u32) -> Option<String> {
        self.delivery.tree(&Tree::Worker(id))
    }

    /// Worker thread `label`'s tree as JSON text (null when it is not in the delivery).
    #[napi(catch_unwind)]
    pub fn thread(&self, label: String) -> Option<String> {
        self.delivery.tree(&Tree::Thread(label))
    }

    /// The merged tree as JSON text, without registered loggers' leaves (merged in JS).
    #[napi(catch_unwind)]
    pub fn cluster(&self) -> String {
        self.delivery
            .tree(&Tree::Cluster)
            .expect("a delivery always has a cluster view")
    }
}
