//! The base definitions, everywhere: every resource (the root, contained ones, Bundle
//! entries, Parameters resources) is checked against the core StructureDefinition of its
//! type, and every complex datatype value against the core StructureDefinition of its
//! datatype, whether or not a profile names them. A resource's snapshot carries only
//! `ele-1` on an element of type Period; `per-1` lives on the Period definition itself
//! (Profiling §5.1.0.4: "Constraints [of a type] apply to all uses of that type").

use std::sync::Arc;

use serde_json::Value;
use tsunagu_fhirpath::Node;

use crate::profile::Profile;
use crate::walk::Walk;

/// The canonical of a core definition.
pub(crate) fn core_definition(type_name: &str) -> String {
    format!("http://hl7.org/fhir/StructureDefinition/{type_name}")
}

/// A type whose values are checked against their core definition here: complex
/// datatypes. Primitives are checked by the structure check (their regex), resources by
/// [`Walk::check_base_resource`], and backbone elements are part of their resource's
/// definition.
fn is_checked_datatype(ty: &str) -> bool {
    let model = tsunagu_model::r4();
    match model.type_def(ty) {
        Some(t) => {
            t.kind == tsunagu_model::TypeKind::Complex && !t.is_abstract && !matches!(ty, "BackboneElement" | "Element")
        }
        None => false,
    }
}

impl<'a> Walk<'_, 'a> {
    /// Checks a resource against the core definition of its type unless one of `applied`
    /// (profiles already walked over it) is a usable profile of that type: a profile's
    /// snapshot inherits every base constraint, so walking the base too would only repeat.
    pub(crate) fn check_base_resource(&mut self, node: Node<'a>, res: &'a Value, rt: &str, applied: &[&str]) {
        let covered = applied.iter().any(|u| self.v.profile(u).is_some_and(|p| p.type_name == rt));
        if covered {
            return;
        }
        let Some(base) = self.v.profile(&core_definition(rt)) else { return };
        self.check_node(&base, 0, node, res);
    }

    /// A complex datatype value met by a profile walk: when the profile `expanded` its
    /// children, only the constraints on the datatype's root (which no element of the
    /// profile repeats) are checked; otherwise the whole core definition is walked.
    pub(crate) fn check_base_datatype(&mut self, node: Node<'a>, res: &'a Value, expanded: bool) {
        let ty = node.type_name();
        let Some(json) = node.value else { return };
        if !is_checked_datatype(ty) {
            return;
        }
        // A value reached by several rules (an element and its slice) is checked once.
        if !self.base_checked.insert(json as *const Value as usize) {
            return;
        }
        let Some(base) = self.datatype_profile(ty) else { return };
        if expanded {
            self.check_constraints(&base.elements[0], &node, res);
        } else {
            self.check_node(&base, 0, node, res);
        }
    }

    fn datatype_profile(&self, ty: &str) -> Option<Arc<Profile>> {
        self.v.profile(&core_definition(ty)).filter(|p| p.type_name == ty)
    }
}
