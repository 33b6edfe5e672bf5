//! Resolution of wire names (JSON property / XML element names) to element definitions.
//!
//! The model lists constrained quantity profiles (`SimpleQuantity`, `MoneyQuantity`) as the
//! types of some choice elements, but on the wire such a choice is named after the base
//! type: `doseQuantity`, never `doseSimpleQuantity` (json.html, choice names use the type
//! code, and the type code there is `Quantity`).

use tsunagu_model::{ElementDef, Model, TypeRef};

const QUANTITY_PROFILES: [&str; 2] = ["SimpleQuantity", "MoneyQuantity"];

/// `Model::child`, with choice names of quantity profiles spelled as on the wire.
pub(crate) fn child<'m>(model: &'m Model, parent: &str, name: &str) -> Option<(&'m ElementDef, &'m TypeRef)> {
    match model.child(parent, name) {
        Some((e, t)) if e.choice && QUANTITY_PROFILES.contains(&t.code) && name.ends_with(t.code) => None,
        Some(found) => Some(found),
        None => {
            let prefix = name.strip_suffix("Quantity")?;
            QUANTITY_PROFILES
                .iter()
                .find_map(|p| model.child(parent, &format!("{prefix}{p}")).filter(|(e, _)| e.choice))
        }
    }
}
