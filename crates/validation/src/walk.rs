//! The walk of one resource over a profile's element tree: which instance nodes each
//! element rule applies to (children, slices, type profiles, extensions, nested
//! resources). The checks made at each node are in `rules.rs`.

use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;
use tsunagu_fhirpath::{EvalContext, Item, Node, PathSegment};
use tsunagu_format::{Issue, IssueType, Severity};

use crate::profile::{DiscriminatorKind, ElementRule, Profile};
use crate::resolve::LocalResolver;
use crate::slicing::{actual_values, extension_profile, find_rule, slice_matches, SliceMatch};
use crate::terminology::strip_version;
use crate::validator::{declared_profiles, Validator};

/// The state of one validation: issues found so far and what was already checked.
pub(crate) struct Walk<'v, 'a> {
    pub(crate) v: &'v Validator,
    /// The resource being validated: locations are relative to it.
    pub(crate) root: &'a Value,
    /// References inside `root` (contained, Bundle entries).
    pub(crate) resolver: &'a LocalResolver<'a>,
    pub(crate) ctx: &'a EvalContext<'a>,
    pub(crate) issues: Vec<Issue>,
    /// Extensions (by address) already checked against their definition.
    pub(crate) seen_extensions: FxHashSet<usize>,
    /// Datatype values (by address) already checked against their core definition.
    pub(crate) base_checked: FxHashSet<usize>,
    /// Whether a nested resource (by address) conforms to a profile (by address), for
    /// `profile` slice discriminators.
    pub(crate) conformance: FxHashMap<(usize, usize), bool>,
    /// How many trial walks (alternative profiles, reference targets) enclose this one.
    pub(crate) depth: u8,
}

impl<'v, 'a> Walk<'v, 'a> {
    pub(crate) fn push(&mut self, severity: Severity, code: IssueType, location: String, en: String, ja: String) {
        // One past the limit is kept, so the caller can tell the list was cut.
        if self.issues.len() <= self.v.max_issues {
            self.issues.push(Issue { severity, code, location, message_en: en, message_ja: ja });
        }
    }

    pub(crate) fn location(&self, node: &Node<'a>) -> String {
        // Finding a node's path walks the resource; once the list is full the issue is
        // dropped anyway, and thousands of such walks would cost the square of its size.
        if self.issues.len() > self.v.max_issues {
            return String::new();
        }
        let rt = self.root.get("resourceType").and_then(Value::as_str).unwrap_or("Resource");
        let mut out = rt.to_owned();
        for seg in node.location(self.root).unwrap_or_default() {
            match seg {
                PathSegment::Key(k) => {
                    out.push('.');
                    out.push_str(&k);
                }
                PathSegment::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        out
    }

    pub(crate) fn check_profile(&mut self, url: &str, requested: bool, node: Node<'a>, res: &'a Value, rt: &str) {
        let Some(profile) = self.v.profile(url) else {
            let loc = self.location(&node);
            if let Some(why) = self.v.unusable_profile(url) {
                let sev = if requested { Severity::Error } else { Severity::Warning };
                self.push(
                    sev,
                    IssueType::Invalid,
                    loc,
                    format!(
                        "Profile {url} has no snapshot and none could be generated ({why}); not validated against it"
                    ),
                    format!(
                        "プロファイル {url} にはスナップショットがなく、生成もできないため、検証していません（{why}）"
                    ),
                );
                return;
            }
            let (sev, why_en, why_ja) = if requested {
                (Severity::Error, "requested", "指定された")
            } else {
                (Severity::Warning, "declared", "宣言された")
            };
            self.push(
                sev,
                IssueType::Invalid,
                loc,
                format!("The {why_en} profile {url} is not loaded; not validated against it"),
                format!("{why_ja}プロファイル {url} が読み込まれていないため、検証していません"),
            );
            return;
        };
        if profile.type_name != rt {
            let loc = self.location(&node);
            self.push(
                Severity::Error,
                IssueType::Invalid,
                loc,
                format!("Profile {url} is for {} resources, not {rt}", profile.type_name),
                format!("プロファイル {url} は {} 用であり、{rt} には適用できません", profile.type_name),
            );
            return;
        }
        self.check_node(&profile, 0, node, res);
    }

    /// Checks one instance node against one element rule (the rule of a slice, or of the
    /// element itself), then its children.
    pub(crate) fn check_node(&mut self, p: &Profile, idx: usize, node: Node<'a>, res: &'a Value) {
        let rule = &p.elements[idx];
        self.check_value(rule, &node);
        self.check_bounds(rule, &node);
        if idx > 0 {
            self.check_type(rule, &node);
        }
        if idx > 0 {
            self.check_reference_target(rule, &node);
        }
        if let Some((strength, vs)) = &rule.binding {
            self.check_binding(*strength, vs, &node);
        }
        self.check_coding_defined(&node);
        self.check_constraints(rule, &node, res);
        if !rule.children.is_empty() {
            if node.type_name() == "Extension" && extension_profile(p, rule).is_some() {
                self.mark_extension(&node);
            }
            for &c in &rule.children {
                self.check_child(p, c, node, res);
            }
            if idx > 0 {
                self.check_base_datatype(node, res, true);
            }
            return;
        }
        // Not expanded in this snapshot: the element's type profile (an extension
        // definition, a datatype profile, a resource profile) describes it, else the core
        // definition of its type.
        if !self.check_type_profiles(rule, node, res) {
            self.check_base_datatype(node, res, false);
        }
    }

    /// The node must conform to one of the profiles of its type (`type.profile` lists are
    /// alternatives). Profiles for other types (a Bundle entry allowing a Patient profile
    /// or an Observation profile) do not apply to it. Returns whether one was walked.
    pub(crate) fn check_type_profiles(&mut self, rule: &ElementRule, node: Node<'a>, res: &'a Value) -> bool {
        let model = tsunagu_model::r4();
        let actual = node.type_name();
        let mut candidates = Vec::new();
        for t in &rule.types {
            if matches!(t.code.as_str(), "Reference" | "canonical" | "uri") {
                continue;
            }
            for url in &t.profiles {
                let Some(tp) = self.v.profile(url) else {
                    let loc = self.location(&node);
                    self.push(
                        Severity::Warning,
                        IssueType::Invalid,
                        loc,
                        format!("Profile {url} of this element is not loaded; not checked"),
                        format!("この要素のプロファイル {url} が読み込まれていないため、検証していません"),
                    );
                    continue;
                };
                if tp.type_name == actual || model.is_subtype(actual, &tp.type_name) {
                    candidates.push(tp);
                }
            }
        }
        let inner_res = match node.value {
            Some(v) if v.get("resourceType").is_some() => v,
            _ => res,
        };
        if candidates.len() == 1 {
            let tp = &candidates[0];
            if tp.type_name == "Extension" {
                self.mark_extension(&node);
            }
            self.check_node(tp, 0, node, inner_res);
            return true;
        }
        // Several alternatives: keep the outcome of the first that passes, else of the first.
        let mut first: Option<Walk<'_, 'a>> = None;
        for tp in &candidates {
            let mut sub = self.sub_walk();
            sub.check_node(tp, 0, node, inner_res);
            let passed = !sub.issues.iter().any(|i| i.severity == Severity::Error);
            if passed {
                first = Some(sub);
                break;
            }
            first.get_or_insert(sub);
        }
        let walked = first.is_some();
        if let Some(sub) = first {
            self.issues.extend(sub.issues);
            self.seen_extensions.extend(sub.seen_extensions);
            self.base_checked.extend(sub.base_checked);
        }
        walked
    }

    /// A fresh walk over the same resource, for trying a profile without reporting.
    pub(crate) fn sub_walk(&self) -> Walk<'v, 'a> {
        Walk {
            v: self.v,
            root: self.root,
            resolver: self.resolver,
            ctx: self.ctx,
            issues: Vec::new(),
            seen_extensions: FxHashSet::default(),
            base_checked: FxHashSet::default(),
            conformance: FxHashMap::default(),
            depth: self.depth + 1,
        }
    }

    pub(crate) fn mark_extension(&mut self, node: &Node<'a>) {
        if let Some(v) = node.value {
            self.seen_extensions.insert(v as *const Value as usize);
        }
    }

    pub(crate) fn check_child(&mut self, p: &Profile, ci: usize, parent: Node<'a>, res: &'a Value) {
        let rule = &p.elements[ci];
        let Some(nav) = &rule.nav else { return };
        let nodes: Vec<Node<'a>> = match nav.evaluate_on(Item::Node(parent), res, None) {
            Ok(items) => items.iter().filter_map(|i| i.as_node().copied()).collect(),
            Err(_) => return,
        };
        let name = rule.name.strip_suffix("[x]").unwrap_or(&rule.name);
        self.check_count(rule, nodes.len(), &parent, name, None);
        if rule.slices.is_empty() {
            for n in nodes {
                self.check_node(p, ci, n, res);
            }
            return;
        }
        // Assign each node to the first slice it matches. Where a discriminator cannot be
        // evaluated for a node, that node may belong to the slices so left open.
        let mut assigned: Vec<Option<usize>> = Vec::with_capacity(nodes.len());
        let mut open: Vec<Vec<usize>> = Vec::with_capacity(nodes.len());
        for n in &nodes {
            let mut hit = None;
            let mut unsure = Vec::new();
            for &s in &rule.slices {
                let mut by_walk = |kind: DiscriminatorKind, slice: &ElementRule, path: &str| match kind {
                    DiscriminatorKind::Profile => self.profile_match(p, slice, path, n),
                    _ => self.type_match_resolved(p, slice, path, n),
                };
                match slice_matches(p, rule, &p.elements[s], n.value, n.type_name(), &mut by_walk) {
                    SliceMatch::Yes => {
                        hit = Some(s);
                        break;
                    }
                    SliceMatch::No => {}
                    SliceMatch::Undecidable => unsure.push(s),
                }
            }
            if hit.is_some() {
                unsure.clear();
            }
            assigned.push(hit);
            open.push(unsure);
        }
        for &s in &rule.slices {
            let count = assigned.iter().filter(|a| **a == Some(s)).count();
            let slice = &p.elements[s];
            let label = slice.slice_name.as_deref().unwrap_or("");
            // When some discriminator cannot be evaluated, a short count may be a
            // misassignment rather than a missing element.
            let uncertain = open.iter().any(|o| o.contains(&s));
            if uncertain && count < slice.min as usize {
                let loc = format!("{}.{name}", self.location(&parent));
                self.push(
                    Severity::Warning,
                    IssueType::Required,
                    loc,
                    format!(
                        "Slice '{label}' needs at least {} element(s); its discriminator could not be evaluated",
                        slice.min
                    ),
                    format!(
                        "スライス '{label}' には {} 個以上の要素が必要ですが、識別子を評価できませんでした",
                        slice.min
                    ),
                );
            } else {
                self.check_count(slice, count, &parent, name, Some(label));
            }
        }
        let closed = rule.slicing.as_ref().is_some_and(|s| s.closed);
        for ((n, hit), unsure) in nodes.into_iter().zip(assigned).zip(open) {
            self.check_node(p, ci, n, res);
            match hit {
                Some(s) => self.check_node(p, s, n, res),
                None if closed && unsure.is_empty() => {
                    let loc = self.location(&n);
                    self.push(
                        Severity::Error,
                        IssueType::Structure,
                        loc,
                        format!("This element matches none of the slices of {}, and the slicing is closed", rule.id),
                        format!("この要素は {} のどのスライスにも該当しません（スライシングは closed）", rule.id),
                    );
                }
                None => {}
            }
        }
    }

    /// A `type` discriminator through `resolve()` (`subject.resolve()`): is the resource a
    /// Reference at the path points to of a type the slice's target profiles allow?
    pub(crate) fn type_match_resolved(
        &mut self,
        p: &Profile,
        slice: &ElementRule,
        path: &str,
        node: &Node<'a>,
    ) -> SliceMatch {
        let Some(json) = node.value else { return SliceMatch::No };
        let prefix = path.strip_suffix("resolve()").unwrap_or(path).trim_end_matches('.');
        let prefix = if prefix == "$this" { "" } else { prefix };
        let Some(rule) = find_rule(p, slice, prefix) else { return SliceMatch::Undecidable };
        let model = tsunagu_model::r4();
        let mut expected: Vec<String> = Vec::new();
        for t in rule.types.iter().filter(|t| t.code == "Reference") {
            for url in &t.target_profiles {
                let ty = match self.v.profile(url) {
                    Some(tp) => tp.type_name.clone(),
                    None => match url.rsplit('/').next() {
                        Some(last) if url.starts_with("http://hl7.org/fhir/StructureDefinition/") => last.to_owned(),
                        _ => return SliceMatch::Undecidable,
                    },
                };
                expected.push(ty);
            }
        }
        if expected.is_empty() {
            return SliceMatch::Undecidable;
        }
        let references = if prefix.is_empty() {
            vec![json]
        } else {
            match actual_values(json, prefix) {
                Some(v) => v,
                None => return SliceMatch::Undecidable,
            }
        };
        if references.is_empty() {
            return SliceMatch::No;
        }
        for r in references {
            let literal = r.get("reference").and_then(Value::as_str);
            let target_type = literal
                .and_then(|l| self.resolver.find(l))
                .and_then(|t| t.get("resourceType"))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| literal.and_then(reference_type).map(str::to_owned))
                .or_else(|| r.get("type").and_then(Value::as_str).map(str::to_owned));
            let Some(target_type) = target_type else { return SliceMatch::Undecidable };
            if !expected.iter().any(|e| e == &target_type || model.is_subtype(&target_type, e)) {
                return SliceMatch::No;
            }
        }
        SliceMatch::Yes
    }

    /// A `profile` discriminator: does the resource the element holds (`resource`) or
    /// points to (`resolve()`, a Reference at `$this`) conform to the slice's profile?
    pub(crate) fn profile_match(
        &mut self,
        p: &Profile,
        slice: &ElementRule,
        path: &str,
        node: &Node<'a>,
    ) -> SliceMatch {
        let Some(json) = node.value else { return SliceMatch::No };
        let type_profiles =
            |r: &ElementRule| -> Vec<String> { r.types.iter().flat_map(|t| t.profiles.iter().cloned()).collect() };
        let target_profiles = |r: &ElementRule| -> Vec<String> {
            r.types.iter().flat_map(|t| t.target_profiles.iter().cloned()).collect()
        };
        let reference = json.get("reference").and_then(Value::as_str);
        let (target, profiles) = match (path, reference) {
            ("resolve()", Some(r)) | ("$this", Some(r)) => (self.resolver.find(r), target_profiles(slice)),
            ("$this", None) => (Some(json), type_profiles(slice)),
            // `item.resolve()`: the resource the one Reference at `item` points to.
            (path, _) if path.ends_with(".resolve()") => {
                let prefix = path.strip_suffix(".resolve()").unwrap_or(path);
                let refs = actual_values(json, prefix).unwrap_or_default();
                let [r] = refs.as_slice() else { return SliceMatch::Undecidable };
                let target = r.get("reference").and_then(Value::as_str).and_then(|l| self.resolver.find(l));
                (target, find_rule(p, slice, prefix).map(target_profiles).unwrap_or_default())
            }
            // A resource held at the path (`resource`, `entry.resource`).
            (path, _) if !path.contains('(') => {
                let values = actual_values(json, path).unwrap_or_default();
                let [v] = values.as_slice() else { return SliceMatch::Undecidable };
                if v.get("resourceType").is_none() {
                    return SliceMatch::Undecidable;
                }
                (Some(*v), find_rule(p, slice, path).map(type_profiles).unwrap_or_default())
            }
            _ => return SliceMatch::Undecidable,
        };
        let Some(target) = target else { return SliceMatch::Undecidable };
        if profiles.is_empty() {
            return SliceMatch::Undecidable;
        }
        let declared = declared_profiles(target);
        if profiles.iter().any(|u| declared.iter().any(|d| strip_version(d) == strip_version(u))) {
            return SliceMatch::Yes;
        }
        let rt = target.get("resourceType").and_then(Value::as_str);
        for url in &profiles {
            let Some(tp) = self.v.profile(url) else { continue };
            if rt.is_some_and(|rt| rt != tp.type_name) {
                continue;
            }
            let key = (target as *const Value as usize, Arc::as_ptr(&tp) as usize);
            let conforms = match self.conformance.get(&key) {
                Some(c) => *c,
                None => {
                    let mut sub = self.sub_walk();
                    let node = if rt.is_some() { Node::resource(target) } else { *node };
                    sub.check_node(&tp, 0, node, target);
                    let ok = !sub.issues.iter().any(|i| i.severity == Severity::Error);
                    self.conformance.insert(key, ok);
                    ok
                }
            };
            if conforms {
                return SliceMatch::Yes;
            }
        }
        SliceMatch::No
    }

    /// Walks the whole tree: extensions not yet checked are checked against their
    /// definition, nested resources against the profiles they declare and their base
    /// definition, and the invariants checked natively at each node. `container` is the
    /// resource whose `contained` list local references (`#id`) point into.
    pub(crate) fn scan(&mut self, node: Node<'a>, res: &'a Value, container: &'a Value) {
        let Ok(children) = self.v.children.evaluate_on(Item::Node(node), res, None) else {
            return;
        };
        for child in children.iter().filter_map(|i| i.as_node().copied()) {
            self.check_element_content(&child);
            let Some(json) = child.value else { continue };
            let (mut inner_res, mut inner_container) = (res, container);
            match nested_resource_type(&child) {
                Some(rt) => {
                    inner_res = json;
                    if !is_contained_in(res, json) {
                        inner_container = json;
                    }
                    let loc = self.location(&child);
                    self.check_element_ids(json, &loc);
                    let declared = declared_profiles(json);
                    for url in &declared {
                        self.check_profile(url, false, child, json, rt);
                    }
                    self.check_base_resource(child, json, rt, &declared);
                    self.check_questionnaire_response(child, json, rt);
                    self.check_conformance(json, rt, &loc);
                }
                None => match child.type_name() {
                    "Extension" => self.check_extension(child, node, res),
                    "Reference" => self.check_local_reference(&child, container),
                    "ElementDefinition" => self.check_element_path(&child),
                    "Attachment" => self.check_attachment(&child),
                    "Quantity" | "Age" | "Count" | "Distance" | "Duration" | "SimpleQuantity" | "MoneyQuantity" => {
                        self.check_ucum(&child)
                    }
                    "markdown" => self.check_markdown(&child, &node),
                    "Coding" => self.check_coding_system(&child),
                    "Identifier" => self.check_identifier(&child),
                    "xhtml" => self.check_narrative_links(&child, res),
                    _ => {}
                },
            }
            self.scan(child, inner_res, inner_container);
        }
    }
}

/// The resource type of a node holding a resource (contained, `Bundle.entry.resource`,
/// `Parameters.parameter.resource`); `None` for other nodes, including backbone elements
/// with a `resourceType` property of their own (`ExampleScenario.instance`).
fn nested_resource_type<'a>(node: &Node<'a>) -> Option<&'a str> {
    let rt = node.value?.get("resourceType")?.as_str()?;
    let ty = node.type_name();
    let holds_resource = matches!(ty, "Resource" | "DomainResource") || tsunagu_model::r4().is_resource_type(ty);
    holds_resource.then_some(rt)
}

/// The resource type a literal reference names (`Patient/1`, `http://x/fhir/Patient/1`,
/// `Patient/1/_history/2`); `None` for `#id`, `urn:` and other forms.
fn reference_type(reference: &str) -> Option<&str> {
    let model = tsunagu_model::r4();
    let path = reference.split(['?', '#']).next()?;
    let path = match path.find("/_history/") {
        Some(i) => &path[..i],
        None => path,
    };
    let mut parts = path.rsplit('/');
    let _id = parts.next()?;
    let ty = parts.next()?;
    model.is_resource_type(ty).then_some(ty)
}

/// Whether `inner` is one of `resource`'s contained resources.
fn is_contained_in(resource: &Value, inner: &Value) -> bool {
    let list = resource.get("contained").and_then(Value::as_array);
    list.is_some_and(|l| l.iter().any(|c| std::ptr::eq(c, inner)))
}
