//! Extension context: an extension may only be used where its definition's `context`
//! allows (an element path, a type, or inside another extension).

use serde_json::Value;
use tsunagu_fhirpath::{EvalContext, Item, Node, PathSegment};
use tsunagu_format::{IssueType, Severity};

use crate::profile::{ExtensionContext, Profile};
use crate::walk::Walk;

/// One element on the way from the nearest resource to an extension's host.
struct Step<'a> {
    /// The model path of the element (`MedicationRequest.dosageInstruction`, `Dosage.route`).
    path: &'static str,
    /// For an element defined by reference to another (`Questionnaire.item.item`): that one.
    defined_at: Option<&'static str>,
    /// Its type (`Dosage`, `CodeableConcept`, `Patient`).
    ty: &'static str,
    json: Option<&'a Value>,
}

impl<'a> Walk<'_, 'a> {
    /// Reports `extension` (an Extension node held by `host`) when its definition `def`
    /// does not allow that element (`context`), or when one of the definition's
    /// `contextInvariant`s is false there.
    pub(crate) fn check_extension_context(
        &mut self,
        def: &Profile,
        extension: &Node<'a>,
        host: Node<'a>,
        res: &'a Value,
    ) {
        if !def.context_invariants.is_empty() {
            self.check_context_invariants(def, extension, host, res);
        }
        if def.contexts.is_empty()
            || def.contexts.iter().any(|c| match c {
                ExtensionContext::Anywhere => true,
                ExtensionContext::Element(e) => e == "Element" || e == "Base",
                ExtensionContext::Extension(_) | ExtensionContext::FhirPath(..) => false,
            })
        {
            return;
        }
        let by_place = def.contexts.iter().any(|c| !matches!(c, ExtensionContext::FhirPath(..)));
        // Located within the enclosing resource only: contexts are relative to it, and a
        // search of a whole Bundle per extension would be quadratic.
        let chain =
            if by_place { extension.location(res).and_then(|location| host_chain(res, &location)) } else { None };
        if chain.as_ref().is_some_and(|h| def.contexts.iter().any(|c| allows(c, h))) {
            return;
        }
        let mut decided = chain.is_some();
        // FHIRPath contexts: evaluated from the resource, they select the elements that
        // may hold the extension.
        for c in &def.contexts {
            let ExtensionContext::FhirPath(_, expression) = c else { continue };
            let Ok(items) = expression.evaluate_on(Item::Node(Node::resource(res)), res, Some(self.ctx)) else {
                continue;
            };
            decided = true;
            if items.iter().filter_map(Item::as_node).any(|n| same_node(n, &host)) {
                return;
            }
        }
        if !decided {
            return;
        }
        let url = extension.value.and_then(|v| v.get("url")).and_then(Value::as_str).unwrap_or("");
        let place = match chain.as_ref().and_then(|h| h.last()) {
            Some(step) => step.path.to_owned(),
            None => self.location(&host),
        };
        let allowed: Vec<&str> = def
            .contexts
            .iter()
            .map(|c| match c {
                ExtensionContext::Element(e) | ExtensionContext::Extension(e) | ExtensionContext::FhirPath(e, _) => {
                    e.as_str()
                }
                ExtensionContext::Anywhere => "",
            })
            .collect();
        let loc = self.location(extension);
        // The R4 publication places several of its own extensions outside the contexts it
        // declares for them, all in its conformance resources (fhir-type on
        // ElementDefinition.type, translation on expansion.contains, normative-version on
        // ValueSet): there a core extension out of context is a warning. Anywhere else, and
        // for extensions of implementation guides (JP Core, JP-CLINS), it is an error, as
        // the HL7 validator reports it.
        let conformance = res.get("resourceType").and_then(Value::as_str).is_some_and(is_conformance_resource);
        let severity = if url.starts_with("http://hl7.org/fhir/StructureDefinition/") && conformance {
            Severity::Warning
        } else {
            Severity::Error
        };
        self.push(
            severity,
            IssueType::Structure,
            loc,
            format!("Extension {url} is not allowed on {place}; its context is {}", allowed.join(", ")),
            format!("拡張 {url} は {place} には使えません（使用できる場所: {}）", allowed.join(", ")),
        );
    }

    /// `contextInvariant` (StructureDefinition.contextInvariant: "all the rules must be
    /// true"): each evaluated with the element holding the extension as focus and
    /// `%extension` the extension.
    fn check_context_invariants(&mut self, def: &Profile, extension: &Node<'a>, host: Node<'a>, res: &'a Value) {
        let mut failed = Vec::new();
        {
            let ctx = EvalContext::new().with_var("extension", vec![Item::Node(*extension)]);
            for (source, expression) in &def.context_invariants {
                let false_ = match expression.evaluate_on(Item::Node(host), res, Some(&ctx)) {
                    Ok(items) => {
                        matches!(items.as_slice(), [Item::Boolean(false)])
                            || matches!(items.as_slice(), [i] if i.json() == Some(&Value::Bool(false)))
                    }
                    Err(_) => false,
                };
                if false_ {
                    failed.push(source.clone());
                }
            }
        }
        if failed.is_empty() {
            return;
        }
        let url = extension.value.and_then(|v| v.get("url")).and_then(Value::as_str).unwrap_or("");
        let loc = self.location(extension);
        for source in failed {
            self.push(
                Severity::Error,
                IssueType::Structure,
                loc.clone(),
                format!("Extension {url} is not allowed here: its context invariant '{source}' is false"),
                format!("拡張 {url} はここでは使えません（コンテキスト不変条件 '{source}' が偽）"),
            );
        }
    }
}

/// Whether two nodes are the same element of the instance (by address).
fn same_node(a: &Node, b: &Node) -> bool {
    match (a.value, b.value) {
        (Some(x), Some(y)) => std::ptr::eq(x, y),
        _ => matches!((a.ext, b.ext), (Some(x), Some(y)) if std::ptr::eq(x, y)),
    }
}

/// Resources the publication's own tooling generated (definitions and terminology).
fn is_conformance_resource(ty: &str) -> bool {
    matches!(
        ty,
        "StructureDefinition"
            | "ValueSet"
            | "CodeSystem"
            | "ConceptMap"
            | "SearchParameter"
            | "OperationDefinition"
            | "CapabilityStatement"
            | "CompartmentDefinition"
            | "ImplementationGuide"
            | "NamingSystem"
            | "StructureMap"
            | "GraphDefinition"
            | "MessageDefinition"
            | "TerminologyCapabilities"
    )
}

fn allows(context: &ExtensionContext, host: &[Step]) -> bool {
    let Some(last) = host.last() else { return false };
    let model = tsunagu_model::r4();
    match context {
        ExtensionContext::Anywhere => true,
        // A FHIRPath context is decided by evaluation, not by the element's place.
        ExtensionContext::FhirPath(..) => false,
        // Anywhere inside the nominated extension (on it, on its value, on its parts),
        // within the same resource.
        ExtensionContext::Extension(url) => host
            .iter()
            .rev()
            .any(|s| s.ty == "Extension" && s.json.and_then(|j| j.get("url")).and_then(Value::as_str) == Some(url)),
        ExtensionContext::Element(e) => {
            let is_resource = host.len() == 1;
            match e.as_str() {
                "Element" | "Base" => true,
                "Resource" | "DomainResource" => is_resource && model.is_subtype(last.ty, e),
                e if e.contains('.') => {
                    last.path == e
                        || last.defined_at == Some(e)
                        || inherited(e, last.path)
                        || last.defined_at.is_some_and(|d| inherited(e, d))
                }
                e => last.ty == e || model.is_subtype(last.ty, e),
            }
        }
    }
}

/// Whether the element path `actual` (`Patient.text`) is the context path `context`
/// (`DomainResource.text`) inherited: the same element under a type that specializes the
/// context's type.
fn inherited(context: &str, actual: &str) -> bool {
    let (Some((base, rest)), Some((ty, actual_rest))) = (context.split_once('.'), actual.split_once('.')) else {
        return false;
    };
    rest == actual_rest && tsunagu_model::r4().is_subtype(ty, base)
}

/// The elements from the nearest enclosing resource down to the holder of the extension at
/// `location` (whose last two steps are `extension`/`modifierExtension` and an index).
fn host_chain<'a>(root: &'a Value, location: &[PathSegment]) -> Option<Vec<Step<'a>>> {
    let model = tsunagu_model::r4();
    let cut = location.iter().rposition(|s| matches!(s, PathSegment::Key(k) if k.ends_with("xtension")))?;
    let mut json = root;
    let mut chain = Vec::new();
    let mut parent = start_at_resource(json, &mut chain)?;
    for seg in &location[..cut] {
        match seg {
            PathSegment::Index(i) => {
                json = json.get(*i)?;
                // The step stands for the one item, not the list.
                if let Some(last) = chain.last_mut() {
                    if last.json.is_some() {
                        last.json = Some(json);
                    }
                }
            }
            PathSegment::Key(k) => {
                let primitive = k.strip_prefix('_');
                let (e, t) = model.child(parent, primitive.unwrap_or(k))?;
                json = json.get(k.as_str())?;
                chain.push(Step {
                    path: e.path,
                    defined_at: e.content_ref,
                    ty: t.code,
                    json: primitive.is_none().then_some(json),
                });
                parent = model.child_parent(e, t);
            }
        }
        // A resource inside (contained, Bundle entry, Parameters): contexts are relative to it.
        if json.get("resourceType").is_some() {
            parent = start_at_resource(json, &mut chain)?;
        }
    }
    Some(chain)
}

/// Restarts the chain at a resource; returns its type as the model parent.
fn start_at_resource<'a>(json: &'a Value, chain: &mut Vec<Step<'a>>) -> Option<&'static str> {
    let rt = json.get("resourceType")?.as_str()?;
    let ty = tsunagu_model::r4().resource_types().iter().copied().find(|t| *t == rt)?;
    chain.clear();
    chain.push(Step { path: ty, defined_at: None, ty, json: Some(json) });
    Some(ty)
}
