//! Services handed to every function: secrets, dedup store, queue… keyed by type, so each
//! capability can be added without the dispatch layer knowing it.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

/// A type-keyed set of shared services (`Arc<T>` each).
#[derive(Clone, Default)]
pub struct Services {
    map: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Services({} registered)", self.map.len())
    }
}

impl Services {
    pub fn new() -> Self {
        Self::default()
    }
    /// Add (or replace) the service of type `T`.
    pub fn insert<T: Send + Sync + 'static>(&mut self, service: Arc<T>) -> &mut Self {
        self.map.insert(TypeId::of::<T>(), service);
        self
    }
    pub fn with<T: Send + Sync + 'static>(mut self, service: Arc<T>) -> Self {
        self.insert(service);
        self
    }
    /// The service of type `T`, if registered.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.map
            .get(&TypeId::of::<T>())
            .cloned()
            .and_then(|s| s.downcast::<T>().ok())
    }
}
