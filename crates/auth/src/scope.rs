//! SMART scopes: `<patient|user|system>/<Type|*>.<cruds>[?param=value&…]`, the 1.0 forms
//! `.read`, `.write` and `.*`, and the identity and launch scopes that grant no data.

use std::fmt;
use std::str::FromStr;

use crate::AuthError;

/// Whose data a resource scope reaches: one patient's compartment, what the user may
/// see, or (for backend services) everything the client is registered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    Patient,
    User,
    System,
}

impl Context {
    pub fn as_str(self) -> &'static str {
        match self {
            Context::Patient => "patient",
            Context::User => "user",
            Context::System => "system",
        }
    }
}

/// One of the five SMART permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    Create,
    Read,
    Update,
    Delete,
    Search,
}

impl Permission {
    /// In the order a scope must list them.
    pub const ALL: [Permission; 5] =
        [Permission::Create, Permission::Read, Permission::Update, Permission::Delete, Permission::Search];

    fn letter(self) -> char {
        match self {
            Permission::Create => 'c',
            Permission::Read => 'r',
            Permission::Update => 'u',
            Permission::Delete => 'd',
            Permission::Search => 's',
        }
    }

    fn bit(self) -> u8 {
        1 << Permission::ALL.iter().position(|p| *p == self).expect("every permission is listed")
    }
}

/// A set of permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions(u8);

impl Permissions {
    pub const NONE: Permissions = Permissions(0);
    pub const ALL: Permissions = Permissions(0b11111);

    pub fn of(list: &[Permission]) -> Permissions {
        Permissions(list.iter().fold(0, |acc, p| acc | p.bit()))
    }

    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn is_superset_of(self, other: Permissions) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL.into_iter().filter(move |p| self.contains(*p))
    }

    /// `cruds` letters in order, each at most once; or the 1.0 words.
    fn parse(s: &str) -> Result<Permissions, &'static str> {
        match s {
            "read" => return Ok(Permissions::of(&[Permission::Read, Permission::Search])),
            "write" => return Ok(Permissions::of(&[Permission::Create, Permission::Update, Permission::Delete])),
            "*" => return Ok(Permissions::ALL),
            "" => return Err("no permissions after the dot"),
            _ => {}
        }
        let mut bits = 0u8;
        let mut next = 0; // index into ALL of the earliest letter still allowed
        for c in s.chars() {
            let Some(i) = Permission::ALL.iter().position(|p| p.letter() == c) else {
                return Err("permissions are the letters c, r, u, d, s");
            };
            if i < next {
                return Err("permissions must appear once each, in the order c r u d s");
            }
            bits |= Permission::ALL[i].bit();
            next = i + 1;
        }
        Ok(Permissions(bits))
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in self.iter() {
            write!(f, "{}", p.letter())?;
        }
        Ok(())
    }
}

/// A scope that grants access to resources.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceScope {
    pub context: Context,
    /// `None` for `*` (every type).
    pub resource_type: Option<String>,
    pub permissions: Permissions,
    /// Search parameters every resource reached through this scope must match (SMART 2.x
    /// "finer-grained" scopes, such as `?category=…|laboratory`), as written; sorted.
    pub restriction: Vec<(String, String)>,
}

impl ResourceScope {
    /// Whether this scope reaches resources of type `ty` with permission `p`. `*` does not
    /// reach the audit trail: reading it takes a scope that names `AuditEvent`, so that
    /// "everything" for a clinical system never includes who looked at what.
    pub fn reaches(&self, ty: &str, p: Permission) -> bool {
        self.permissions.contains(p)
            && match self.resource_type.as_deref() {
                Some(t) => t == ty,
                None => !is_named_only(ty),
            }
    }

    /// Whether everything `narrower` grants, this scope grants too (for `p`): the same
    /// context, the same type or `*`, and no restriction `narrower` lacks.
    fn covers(&self, narrower: &ResourceScope, p: Permission) -> bool {
        self.context == narrower.context
            && self.permissions.contains(p)
            && (self.resource_type == narrower.resource_type
                || (self.resource_type.is_none() && !narrower.resource_type.as_deref().is_some_and(is_named_only)))
            && self.restriction.iter().all(|r| narrower.restriction.contains(r))
    }
}

/// One scope of a token or registration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Resource(ResourceScope),
    /// `openid`, `fhirUser`, `profile`, `launch`, `launch/<context>`, `offline_access`,
    /// `online_access`: identity and launch context, no data.
    Other(String),
}

const OTHER_SCOPES: [&str; 6] = ["openid", "fhirUser", "profile", "launch", "offline_access", "online_access"];

impl FromStr for Scope {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Scope, AuthError> {
        let invalid = |reason| AuthError::InvalidScope { scope: s.to_string(), reason };
        if OTHER_SCOPES.contains(&s) || s.strip_prefix("launch/").is_some_and(is_name) {
            return Ok(Scope::Other(s.to_string()));
        }
        let (context, rest) =
            s.split_once('/').ok_or_else(|| invalid("expected <patient|user|system>/<Type>.<cruds>"))?;
        let context = match context {
            "patient" => Context::Patient,
            "user" => Context::User,
            "system" => Context::System,
            _ => return Err(invalid("the context must be patient, user or system")),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (ty, perms) = rest.split_once('.').ok_or_else(|| invalid("expected <Type>.<cruds> after the context"))?;
        let resource_type = match ty {
            "*" => None,
            t if is_type_name(t) => Some(t.to_string()),
            _ => return Err(invalid("the resource type must be a FHIR type name or *")),
        };
        let permissions = Permissions::parse(perms).map_err(invalid)?;
        let mut restriction = Vec::new();
        if let Some(q) = query {
            for pair in q.split('&') {
                match pair.split_once('=') {
                    Some((k, v)) if is_param_name(k) && !v.is_empty() => {
                        restriction.push((k.to_string(), v.to_string()))
                    }
                    _ => return Err(invalid("a restriction is param=value pairs joined by &")),
                }
            }
            restriction.sort();
            restriction.dedup();
        }
        Ok(Scope::Resource(ResourceScope { context, resource_type, permissions, restriction }))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Other(s) => f.write_str(s),
            Scope::Resource(r) => {
                write!(f, "{}/{}.{}", r.context.as_str(), r.resource_type.as_deref().unwrap_or("*"), r.permissions)?;
                for (i, (k, v)) in r.restriction.iter().enumerate() {
                    write!(f, "{}{k}={v}", if i == 0 { '?' } else { '&' })?;
                }
                Ok(())
            }
        }
    }
}

/// Types a `*` scope does not reach.
pub fn is_named_only(ty: &str) -> bool {
    ty == "AuditEvent"
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn is_type_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A search parameter that filters. Result parameters (`_include`, `_revinclude`,
/// `_contained`, `_count`, …) would let a "narrower" scope reach more, so of the `_` names
/// only the filtering ones are allowed.
fn is_param_name(s: &str) -> bool {
    const FILTERS: [&str; 6] = ["_id", "_lastUpdated", "_tag", "_profile", "_security", "_source"];
    let base = s.split(':').next().unwrap_or(s);
    !base.is_empty()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'))
        && (!base.starts_with('_') || FILTERS.contains(&base))
}

/// Scopes one request or registration may list: far more than any real client needs,
/// and a bound on the work of checking them.
pub const MAX_SCOPES: usize = 256;

/// The scopes of one token or registration (OAuth's space-separated list).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet {
    scopes: Vec<Scope>,
}

impl ScopeSet {
    /// Every scope of `s` (separated by spaces), or the first that is not a scope.
    pub fn parse(s: &str) -> Result<ScopeSet, AuthError> {
        let mut scopes: Vec<Scope> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for part in s.split(' ').filter(|p| !p.is_empty()) {
            if seen.len() >= MAX_SCOPES {
                return Err(AuthError::InvalidScope {
                    scope: part.chars().take(80).collect(),
                    reason: "too many scopes",
                });
            }
            let scope: Scope = part.parse()?;
            if seen.insert(scope.clone()) {
                scopes.push(scope);
            }
        }
        Ok(ScopeSet { scopes })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.scopes.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }

    pub fn contains_other(&self, name: &str) -> bool {
        self.scopes.iter().any(|s| matches!(s, Scope::Other(o) if o == name))
    }

    /// The resource scopes that reach `ty` with `p`. None: denied. Any without a
    /// restriction: allowed within its context. Otherwise each restriction is a filter, and
    /// a resource passes if it matches one of them.
    pub fn reaching<'a>(&'a self, ty: &'a str, p: Permission) -> impl Iterator<Item = &'a ResourceScope> + 'a {
        self.resource_scopes().filter(move |r| r.reaches(ty, p))
    }

    /// Whether every permission `self` grants is granted by `registered` too: a client may
    /// ask for less than it was registered for, never more. Permissions may be covered by
    /// different registered scopes (`Observation.rs` by `Observation.r` and `Observation.s`).
    pub fn is_within(&self, registered: &ScopeSet) -> bool {
        self.scopes.iter().all(|s| registered.allows(s))
    }

    /// The scopes of `self` that `registered` allows: what a token endpoint grants when a
    /// client asks for more than it may have (OAuth lets it grant less than asked).
    pub fn granted_by(&self, registered: &ScopeSet) -> ScopeSet {
        ScopeSet { scopes: self.scopes.iter().filter(|s| registered.allows(s)).cloned().collect() }
    }

    /// Whether every permission of `wanted` is granted by some scope of `self`.
    fn allows(&self, wanted: &Scope) -> bool {
        match wanted {
            Scope::Other(o) => self.contains_other(o),
            Scope::Resource(w) => w.permissions.iter().all(|p| self.resource_scopes().any(|have| have.covers(w, p))),
        }
    }

    fn resource_scopes(&self) -> impl Iterator<Item = &ResourceScope> {
        self.scopes.iter().filter_map(|s| match s {
            Scope::Resource(r) => Some(r),
            Scope::Other(_) => None,
        })
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.scopes.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn v2_scopes_parse_and_print_back() {
        for s in [
            "patient/*.rs",
            "user/*.cruds",
            "system/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
            "system/Patient.c",
            "patient/Observation.rs?_lastUpdated=ge2024&code:in=http://x/vs",
            "openid fhirUser launch/patient offline_access",
        ] {
            assert_eq!(set(s).to_string(), s);
        }
    }

    #[test]
    fn scope_lists_are_bounded() {
        let many: Vec<String> = (0..MAX_SCOPES + 1).map(|i| format!("launch/c{i}")).collect();
        assert!(ScopeSet::parse(&many[..MAX_SCOPES].join(" ")).is_ok());
        assert!(ScopeSet::parse(&many.join(" ")).is_err());
    }

    #[test]
    fn v1_forms_mean_their_v2_equivalents() {
        assert_eq!(set("patient/Observation.read"), set("patient/Observation.rs"));
        assert_eq!(set("user/*.write"), set("user/*.cud"));
        assert_eq!(set("system/*.*"), set("system/*.cruds"));
    }

    #[test]
    fn malformed_scopes_are_refused() {
        for s in [
            "patient/*.rx",
            "patient/*.sr",
            "patient/*.rr",
            "patient/*.",
            "doctor/*.rs",
            "patient/observation.rs",
            "patient/Observation",
            "patient/Observation.rs?category",
            "patient/Observation.rs?=x",
            "patient/Observation.rs?category=lab&_revinclude=Provenance:target",
            "patient/Observation.rs?_include=Observation:subject",
            "patient/Observation.rs?_count=1",
            "admin",
            "launch/",
        ] {
            assert!(ScopeSet::parse(s).is_err(), "{s} was accepted");
        }
    }

    #[test]
    fn reaching_follows_type_permission_and_restriction() {
        let s = set("patient/Observation.rs?category=laboratory patient/Patient.r system/Encounter.cruds");
        assert_eq!(s.reaching("Observation", Permission::Search).count(), 1);
        assert_eq!(s.reaching("Observation", Permission::Update).count(), 0);
        assert_eq!(s.reaching("Patient", Permission::Search).count(), 0);
        assert_eq!(s.reaching("Condition", Permission::Read).count(), 0);
        let lab = s.reaching("Observation", Permission::Read).next().unwrap();
        assert_eq!(lab.restriction, vec![("category".to_string(), "laboratory".to_string())]);
        assert_eq!(lab.context, Context::Patient);
        assert!(set("user/*.r").reaching("AuditEvent", Permission::Read).next().is_none());
        assert!(set("user/AuditEvent.r").reaching("AuditEvent", Permission::Read).next().is_some());
        assert!(!set("system/AuditEvent.rs").is_within(&set("system/*.cruds")));
    }

    #[test]
    fn a_request_is_within_a_registration_only_when_every_permission_is_covered() {
        let registered = set("system/Observation.r system/Observation.s system/Patient.rs?active=true openid");
        assert!(set("system/Observation.rs").is_within(&registered));
        assert!(set("system/Patient.r?active=true&gender=female").is_within(&registered));
        assert!(set("openid").is_within(&registered));
        assert!(!set("system/Patient.r").is_within(&registered), "drops the restriction");
        assert!(!set("system/Observation.rus").is_within(&registered));
        assert!(!set("patient/Observation.rs").is_within(&registered), "another context");
        assert!(!set("system/*.r").is_within(&registered), "wider type");
        assert!(!set("fhirUser").is_within(&registered));
        assert!(set("system/Condition.rs").is_within(&set("system/*.cruds")));
        let asked = set("system/Observation.rs system/Condition.r openid");
        assert_eq!(asked.granted_by(&registered), set("system/Observation.rs openid"));
    }
}
