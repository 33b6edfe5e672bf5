//! Scope text and scope values agree: whatever is printed parses back to the same scope,
//! and no string makes the parser panic.

use proptest::prelude::*;
use tsunagu_auth::{Context, Permission, Permissions, ResourceScope, Scope, ScopeSet};

fn resource_scope() -> impl Strategy<Value = ResourceScope> {
    let context = prop_oneof![Just(Context::Patient), Just(Context::User), Just(Context::System)];
    let ty = prop_oneof![Just(None), "[A-Z][a-zA-Z]{0,12}".prop_map(Some)];
    let perms = proptest::collection::vec(any::<bool>(), 5).prop_filter_map("at least one", |bits| {
        let list: Vec<Permission> = Permission::ALL.into_iter().zip(bits).filter(|(_, b)| *b).map(|(p, _)| p).collect();
        (!list.is_empty()).then(|| Permissions::of(&list))
    });
    let restriction = proptest::collection::btree_map("[a-z][a-z-]{0,8}", "[A-Za-z0-9:/.|-]{1,20}", 0..3)
        .prop_map(|m| m.into_iter().collect::<Vec<_>>());
    (context, ty, perms, restriction).prop_map(|(context, resource_type, permissions, restriction)| ResourceScope {
        context,
        resource_type,
        permissions,
        restriction,
    })
}

proptest! {
    #[test]
    fn printed_scopes_parse_back(r in resource_scope()) {
        let scope = Scope::Resource(r);
        let text = scope.to_string();
        prop_assert_eq!(text.parse::<Scope>().unwrap(), scope);
    }

    #[test]
    fn a_scope_is_within_itself_and_wider_ones(r in resource_scope()) {
        let narrow = ScopeSet::parse(&Scope::Resource(r.clone()).to_string()).unwrap();
        prop_assert!(narrow.is_within(&narrow));
        let wide = ScopeSet::parse(&format!("{}/*.cruds", r.context.as_str())).unwrap();
        prop_assert!(narrow.is_within(&wide));
    }

    #[test]
    fn any_text_is_parsed_or_refused(s in "\\PC{0,40}") {
        let _ = ScopeSet::parse(&s);
    }
}
