//! FHIR R4 structural facts, as the rest of Tsunagu needs them: which types exist, which
//! elements each type and backbone element has (with types, cardinality, summary and
//! modifier flags, bindings), which codes a required binding allows, every search parameter
//! and every compartment.
//!
//! The facts are compact tables generated from the official R4 core package by
//! `cargo xtask gen-model` and committed under `src/generated/`; they are parsed once, on
//! first use, into indexes. This crate owns no behaviour beyond answering questions about
//! the model: it never parses resources, evaluates FHIRPath or validates anything.

mod tables;

pub use tables::{
    Binding, BindingStrength, Compartment, ElementDef, Model, SearchParamDef, SearchParamType, TypeDef, TypeKind,
    TypeRef,
};

/// The R4 (4.0.1) model, built on first use.
pub fn r4() -> &'static Model {
    static MODEL: std::sync::OnceLock<Model> = std::sync::OnceLock::new();
    MODEL.get_or_init(Model::load_r4)
}
