//! Every FHIR operation this server serves, declared once in [`OPERATIONS`]: its name,
//! OperationDefinition, the types and levels it applies to, whether GET may call it, its
//! parameters, what it answers and the function that runs it. The server routes
//! `[base]/$op`, `[base]/Type/$op` and `[base]/Type/id/$op` through [`find`], the
//! CapabilityStatement lists [`OPERATIONS`], and batch and transaction GET entries invoke
//! them through [`Interactions::invoke`] — so an operation added here is reachable
//! everywhere at once.
//!
//! One module per operation (or family): `everything.rs`, `summary.rs`, `validate.rs`,
//! `terminology.rs`, `view_run.rs`, `export.rs` (asynchronous: run by `crate::Exports`).

mod everything;
mod export;
mod summary;
mod terminology;
mod validate;
mod view_run;

use serde_json::Value;

use crate::error::InteractionError;
use crate::search::SearchParams;
use crate::{Interactions, RequestContext};

/// Where an operation is invoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    System,
    Type,
    Instance,
}

/// What an operation answers, for the HTTP layer's shaping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A resource (Parameters, OperationOutcome, ValueSet, …).
    Resource,
    /// A searchset Bundle (`_summary`/`_elements` apply to its entries).
    Searchset,
    /// A document Bundle (readable as an HTML page).
    Document,
    /// A Binary whose `data` is the answer itself, sent as its `contentType`.
    Binary,
    /// Nothing at once: an asynchronous request (Bulk Data `$export`). The server starts a
    /// job through `Exports` and answers 202 with its status URL; `invoke` refuses it.
    Async,
}

/// One input parameter, as the OperationDefinition names it.
#[derive(Debug, Clone, Copy)]
pub struct Parameter {
    pub name: &'static str,
    pub type_name: &'static str,
}

/// A call: the level's type and id, the query and the body (a resource or Parameters).
pub struct Invocation<'a> {
    pub ty: Option<&'a str>,
    pub id: Option<&'a str>,
    pub params: &'a SearchParams,
    pub body: Option<Value>,
}

type Run = fn(&Interactions, &Operation, &Invocation<'_>, &RequestContext) -> Result<Value, InteractionError>;

pub struct Operation {
    /// Without the `$`.
    pub name: &'static str,
    /// Canonical URL of the OperationDefinition it implements.
    pub definition: &'static str,
    /// The resource types it applies to; empty: every type.
    pub types: &'static [&'static str],
    pub levels: &'static [Level],
    /// May be invoked with GET (it changes nothing and its inputs are simple).
    pub get: bool,
    pub parameters: &'static [Parameter],
    pub output: Output,
    run: Run,
}

impl Operation {
    pub fn applies_to(&self, ty: Option<&str>, level: Level) -> bool {
        self.levels.contains(&level)
            && match ty {
                Some(t) => self.types.is_empty() || self.types.contains(&t),
                None => level == Level::System,
            }
    }
}

/// Every operation served.
pub static OPERATIONS: &[Operation] = &[
    everything::EVERYTHING,
    export::EXPORT,
    export::PATIENT_EXPORT,
    export::GROUP_EXPORT,
    summary::SUMMARY,
    validate::VALIDATE,
    terminology::LOOKUP,
    terminology::CODE_SYSTEM_VALIDATE_CODE,
    terminology::SUBSUMES,
    terminology::EXPAND,
    terminology::VALUE_SET_VALIDATE_CODE,
    terminology::TRANSLATE,
    view_run::VIEW_RUN,
];

/// The operation `$name` (with or without the `$`) at this level and type.
pub fn find(name: &str, ty: Option<&str>, level: Level) -> Option<&'static Operation> {
    let name = name.strip_prefix('$').unwrap_or(name);
    OPERATIONS.iter().find(|op| op.name == name && op.applies_to(ty, level))
}

/// The operations served on `ty` (type or instance level), for the CapabilityStatement.
pub fn on_type(ty: &str) -> impl Iterator<Item = &'static Operation> + '_ {
    OPERATIONS.iter().filter(move |op| {
        (op.levels.contains(&Level::Type) || op.levels.contains(&Level::Instance))
            && (op.types.is_empty() || op.types.contains(&ty))
    })
}

/// The operations served at system level.
pub fn on_system() -> impl Iterator<Item = &'static Operation> {
    OPERATIONS.iter().filter(|op| op.levels.contains(&Level::System))
}

impl Interactions {
    /// Runs `op`. The operation checks what the caller may reach itself, as any
    /// interaction does.
    pub fn invoke(
        &self,
        op: &Operation,
        inv: &Invocation<'_>,
        ctx: &RequestContext,
    ) -> Result<Value, InteractionError> {
        if let Some(ty) = inv.ty {
            // An operation may name a type from an IG that R4 lacks (ViewDefinition).
            if !op.types.contains(&ty) {
                self.known_type(ty)?;
            }
        }
        (op.run)(self, op, inv, ctx)
    }
}

/// The operation named by the last segment of `rest` (`$everything`, `id/$summary`) in a
/// batch or transaction entry.
pub(crate) fn entry_operation<'a>(ty: &'a str, rest: &'a [&'a str]) -> Option<(&'static Operation, Option<&'a str>)> {
    match rest {
        [op] if op.starts_with('$') => find(op, Some(ty), Level::Type).map(|o| (o, None)),
        [id, op] if op.starts_with('$') => find(op, Some(ty), Level::Instance).map(|o| (o, Some(*id))),
        _ => None,
    }
    // Asynchronous operations answer through their status URL, which an entry cannot.
    .filter(|(o, _)| o.output != Output::Async)
}
