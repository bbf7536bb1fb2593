//! Modules: named functions at the top level (framework 2.0) and in namespaces (1.0).

use super::checks::{Checks, RecordKind};
use super::handler::{ExtError, ExtResult, Handler, IntoReply, Invocation, RawFn};
use super::kinds::{self, FunctionKind, TypedFn};
use crate::protocol::WireError;
use crate::protocol::types::RecordError;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

type Table = HashMap<String, Arc<dyn Handler>>;

/// A set of extension functions: the DIY module or one connector's module.
///
/// Typed registrations (`pre_map`, `export`, …) put a function both in its 1.0 namespace and at
/// the top level, because integrator.io calls it either way depending on the stack's framework.
/// Registering the same name twice in one place is a configuration error reported at start-up.
#[derive(Default, Clone)]
pub struct Module {
    top: Table,
    namespaces: HashMap<String, Table>,
    duplicates: Vec<String>,
}

macro_rules! typed_registrations {
    ($($(#[$doc:meta])* $method:ident => $kind:ty),* $(,)?) => {$(
        $(#[$doc])*
        pub fn $method<F, Fut>(&mut self, name: &str, f: F) -> Registration<'_, $kind, F>
        where
            F: Fn(Invocation, <$kind as FunctionKind>::Options) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = ExtResult<<$kind as FunctionKind>::Output>> + Send + 'static,
        {
            self.register::<$kind, F, Fut>(name, f)
        }
    )*};
}

impl Module {
    /// An empty module.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register a typed function of kind `K` in its namespaces and (for 2.0) the top level.
    /// The answer declares its validation ([`Registration`]) and derefs to the module, so
    /// registrations chain: `m.pre_map("a", f).ensure_setting("x").pre_map("b", g)`.
    pub fn register<K, F, Fut>(&mut self, name: &str, f: F) -> Registration<'_, K, F>
    where
        K: FunctionKind,
        F: Fn(Invocation, K::Options) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ExtResult<K::Output>> + Send + 'static,
    {
        let f = Arc::new(f);
        let handler: Arc<dyn Handler> =
            Arc::new(TypedFn::<K, F>::with_checks(f.clone(), Checks::default()));
        for ns in K::NAMESPACES {
            self.insert(Some(ns), name, handler.clone());
        }
        if K::TOP_LEVEL {
            self.insert(None, name, handler);
        }
        Registration {
            module: self,
            name: name.to_owned(),
            f,
            checks: Checks::default(),
        }
    }

    /// Put `handler` where `name` of kind `K` is registered, replacing what is there (a
    /// registration's declarations rebuild its handler; this is not a second registration).
    fn reinstall<K: FunctionKind>(&mut self, name: &str, handler: Arc<dyn Handler>) {
        for ns in K::NAMESPACES {
            self.namespaces
                .entry((*ns).to_owned())
                .or_default()
                .insert(name.to_owned(), handler.clone());
        }
        if K::TOP_LEVEL {
            self.top.insert(name.to_owned(), handler);
        }
    }

    typed_registrations! {
        /// preSavePage hook (`hooks` + top level).
        pre_save_page => kinds::PreSavePage,
        /// preMap hook; the result must have one entry per record.
        pre_map => kinds::PreMap,
        /// postMap hook; one entry per `postMapData` record.
        post_map => kinds::PostMap,
        /// postSubmit hook; one entry per `responseData` element.
        post_submit => kinds::PostSubmit,
        /// postResponseMap hook; one entry per `postResponseMapData` element.
        post_response_map => kinds::PostResponseMap,
        /// postAggregate hook (no result).
        post_aggregate => kinds::PostAggregate,
        /// A webhook function (namespace `webhooks` only): the queue worker runs it with each
        /// event an incoming endpoint naming it accepted ([`crate::worker`]).
        webhook => kinds::Webhook,
        /// ping wrapper (`wrappers` + top level).
        ping => kinds::Ping,
        /// export wrapper.
        export => kinds::Export,
        /// import wrapper; one response per `postMapData` record.
        import => kinds::Import,
        /// 1.0 installer function (`installer` + top level).
        installer => kinds::Installer,
        /// 1.0 uninstaller function (`uninstaller` + top level).
        uninstaller => kinds::Uninstaller,
        /// update (`installer` + top level).
        update => kinds::Update,
        /// 2.0 install/uninstall step (top level).
        step => kinds::Step,
        /// persistSettings (`settings` + top level).
        persist_settings => kinds::PersistSettings,
        /// refreshMetadata (`settings` + top level).
        refresh_metadata => kinds::RefreshMetadata,
        /// changeEdition (`settings` + top level).
        change_edition => kinds::ChangeEdition,
        /// getMappingMetadata (`settings` + top level).
        get_mapping_metadata => kinds::GetMappingMetadata,
        /// formInit (top level).
        form_init => kinds::FormInit,
        /// preSave (top level).
        pre_save => kinds::PreSave,
        /// initChild (top level).
        init_child => kinds::InitChild,
    }

    /// A raw-JSON function at the top level (framework 2.0).
    pub fn raw<F, Fut, R>(&mut self, name: &str, f: F) -> &mut Self
    where
        F: Fn(Invocation, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ExtResult<R>> + Send + 'static,
        R: IntoReply,
    {
        self.insert(None, name, Arc::new(RawFn(f)))
    }

    /// A raw-JSON function in a 1.0 namespace (`hooks`, `wrappers`, `utilities`, or any other
    /// name, which is then reachable with that `type`).
    pub fn raw_in<F, Fut, R>(&mut self, namespace: &str, name: &str, f: F) -> &mut Self
    where
        F: Fn(Invocation, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ExtResult<R>> + Send + 'static,
        R: IntoReply,
    {
        self.insert(Some(namespace), name, Arc::new(RawFn(f)))
    }

    /// A utility function (`utilities` + top level), raw JSON in and out.
    pub fn utility<F, Fut, R>(&mut self, name: &str, f: F) -> &mut Self
    where
        F: Fn(Invocation, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ExtResult<R>> + Send + 'static,
        R: IntoReply,
    {
        let h: Arc<dyn Handler> = Arc::new(RawFn(f));
        self.insert(Some("utilities"), name, h.clone());
        self.insert(None, name, h)
    }

    /// Register an already-built handler at `namespace` (`None` = top level).
    #[doc(hidden)]
    pub fn insert(
        &mut self,
        namespace: Option<&str>,
        name: &str,
        handler: Arc<dyn Handler>,
    ) -> &mut Self {
        let table = match namespace {
            None => &mut self.top,
            Some(ns) => self.namespaces.entry(ns.to_owned()).or_default(),
        };
        if table.insert(name.to_owned(), handler).is_some() {
            self.duplicates
                .push(format!("{}.{name}", namespace.unwrap_or("<top>")));
        }
        self
    }

    /// Add every function of `other` (used by `make serve` to host all extension points).
    pub fn merge(&mut self, other: Module) -> &mut Self {
        self.duplicates.extend(other.duplicates);
        for (name, h) in other.top {
            self.insert(None, &name, h);
        }
        for (ns, table) in other.namespaces {
            for (name, h) in table {
                self.insert(Some(&ns), &name, h);
            }
        }
        self
    }

    /// Names registered twice (a start-up error).
    #[doc(hidden)]
    pub fn duplicates(&self) -> &[String] {
        &self.duplicates
    }

    /// Every registered function as `namespace.name` or `name`, sorted.
    pub fn function_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.top.keys().cloned().collect();
        for (ns, t) in &self.namespaces {
            names.extend(t.keys().map(|n| format!("{ns}.{n}")));
        }
        names.sort();
        names
    }

    /// Find the handler for a call: `namespace` is the already-mapped 1.0 namespace, or `None`
    /// for the top level. `type_as_sent` is only used in the error message.
    pub(crate) fn resolve(
        &self,
        namespace: Option<&str>,
        type_as_sent: &str,
        function: &str,
    ) -> Result<Arc<dyn Handler>, WireError> {
        let table = match namespace {
            None => &self.top,
            Some(ns) => self
                .namespaces
                .get(ns)
                .ok_or_else(|| WireError::object_not_found(type_as_sent))?,
        };
        table
            .get(function)
            .cloned()
            .ok_or_else(WireError::invalid_function)
    }
}

/// A typed function just registered: declare what it needs, checked before it runs (see
/// [`checks`](super::checks) for the exact answers). Derefs to the [`Module`], so further
/// registrations chain on it.
///
/// ```
/// # use integrator_lambda::types::{PreMapOptions, RecordResult};
/// # use integrator_lambda::{ExtResult, Invocation, Module};
/// # async fn f(_i: Invocation, o: PreMapOptions) -> ExtResult<Vec<RecordResult>> {
/// #     Ok(o.data.into_iter().map(RecordResult::keep).collect()) }
/// let mut m = Module::new();
/// m.pre_map("enrichRecords", f)
///     .ensure_setting("baseUrl")
///     .ensure_record("customerId");
/// ```
pub struct Registration<'m, K: FunctionKind, F> {
    module: &'m mut Module,
    name: String,
    f: Arc<F>,
    checks: Checks<K>,
}

impl<K, F, Fut> Registration<'_, K, F>
where
    K: FunctionKind,
    F: Fn(Invocation, K::Options) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ExtResult<K::Output>> + Send + 'static,
{
    fn declare(mut self, add: impl FnOnce(&mut Checks<K>)) -> Self {
        add(&mut self.checks);
        let handler: Arc<dyn Handler> = Arc::new(TypedFn::<K, F>::with_checks(
            self.f.clone(),
            self.checks.clone(),
        ));
        self.module.reinstall::<K>(&self.name, handler);
        self
    }

    /// `options.settings.<path>` (dotted) must be present and not `null`; otherwise the whole
    /// call fails with 422 `invalid_settings`.
    pub fn ensure_setting(self, path: &str) -> Self {
        self.declare(|c| c.setting(path))
    }

    /// A custom check of the whole call, after the settings: its error fails the call (422).
    /// [`invalid_settings`](super::checks::invalid_settings) builds the usual error.
    pub fn check<C>(self, check: C) -> Self
    where
        C: Fn(&K::Options) -> Result<(), ExtError> + Send + Sync + 'static,
    {
        self.declare(|c| c.call(check))
    }

    /// Each record must have `<path>` (dotted, not `null`); a record without it is rejected
    /// with `{"code":"missing_field",…}` and never reaches the function.
    pub fn ensure_record(self, path: &str) -> Self
    where
        K: RecordKind,
    {
        self.declare(|c| c.record(path))
    }

    /// A custom check of each record: the error it returns rejects that record (`None`: the
    /// record passes).
    pub fn check_record<C>(self, check: C) -> Self
    where
        K: RecordKind,
        C: Fn(&Value) -> Option<RecordError> + Send + Sync + 'static,
    {
        self.declare(|c| c.record_check(check))
    }
}

impl<K: FunctionKind, F> Deref for Registration<'_, K, F> {
    type Target = Module;
    fn deref(&self) -> &Module {
        self.module
    }
}

impl<K: FunctionKind, F> DerefMut for Registration<'_, K, F> {
    fn deref_mut(&mut self) -> &mut Module {
        self.module
    }
}
