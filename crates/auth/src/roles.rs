//! Platform roles: who a person or system is on the national platform, each with a named
//! default set of scopes that the configuration may replace. A user's token never holds
//! more than its role's scopes; a client registered with a role and no scopes of its own
//! gets the role's.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::{AuthError, ScopeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// A hospital's or clinic's system (電子カルテ) exchanging on its own behalf.
    Institution,
    Doctor,
    Pharmacist,
    Nurse,
    Patient,
    Municipality,
    PublicHealthCentre,
    /// Runs the server's directory (organizations, practitioners), not clinical data.
    Administrator,
    /// Reads the audit trail, nothing else.
    Auditor,
    /// No scopes: reads and searches nothing; may only run bulk exports, always
    /// de-identified (see `tsunagu_interaction::export`).
    Researcher,
}

impl Role {
    pub const ALL: [Role; 10] = [
        Role::Institution,
        Role::Doctor,
        Role::Pharmacist,
        Role::Nurse,
        Role::Patient,
        Role::Municipality,
        Role::PublicHealthCentre,
        Role::Administrator,
        Role::Auditor,
        Role::Researcher,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Institution => "institution",
            Role::Doctor => "doctor",
            Role::Pharmacist => "pharmacist",
            Role::Nurse => "nurse",
            Role::Patient => "patient",
            Role::Municipality => "municipality",
            Role::PublicHealthCentre => "public-health-centre",
            Role::Administrator => "administrator",
            Role::Auditor => "auditor",
            Role::Researcher => "researcher",
        }
    }

    /// The scopes a role has unless the configuration says otherwise. `*` never reaches
    /// AuditEvent (see `ScopeSet`), so only the auditor reads the trail.
    pub fn default_scopes(self) -> &'static str {
        match self {
            Role::Institution => "system/*.cruds",
            Role::Doctor => "user/*.cruds",
            Role::Pharmacist => {
                "user/Patient.rs user/MedicationRequest.rs user/MedicationDispense.cruds \
                 user/MedicationStatement.cruds user/Medication.rs user/AllergyIntolerance.rs user/Condition.rs \
                 user/Observation.rs user/Composition.rs user/DocumentReference.rs user/Bundle.rs"
            }
            Role::Nurse => {
                "user/*.rs user/Observation.cru user/Procedure.cru user/MedicationAdministration.cru \
                 user/CarePlan.cru user/DocumentReference.cru"
            }
            Role::Patient => "patient/*.rs",
            Role::Municipality => {
                "user/Patient.rs user/Immunization.cruds user/QuestionnaireResponse.cruds user/Observation.rs \
                 user/Questionnaire.rs"
            }
            Role::PublicHealthCentre => {
                "user/Patient.rs user/QuestionnaireResponse.rs user/Condition.rs user/Observation.rs \
                 user/Immunization.rs user/Questionnaire.rs"
            }
            Role::Administrator => {
                "user/Organization.cruds user/Practitioner.cruds user/PractitionerRole.cruds user/Location.cruds \
                 user/Endpoint.cruds user/HealthcareService.cruds"
            }
            Role::Auditor => "user/AuditEvent.rs",
            Role::Researcher => "",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Role, AuthError> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            AuthError::InvalidClient(format!("unknown role '{s}' (one of {})", names.join(", ")))
        })
    }
}

/// Each role's scopes: the defaults, with the configured replacements.
#[derive(Debug, Clone)]
pub struct RoleScopes {
    scopes: BTreeMap<Role, ScopeSet>,
}

impl RoleScopes {
    /// The defaults, each replaced by `overrides[role name]` when given.
    pub fn new(overrides: &BTreeMap<String, String>) -> Result<RoleScopes, AuthError> {
        for name in overrides.keys() {
            name.parse::<Role>()?;
        }
        let mut scopes = BTreeMap::new();
        for role in Role::ALL {
            let text = overrides.get(role.as_str()).map_or(role.default_scopes(), String::as_str);
            scopes.insert(role, ScopeSet::parse(text)?);
        }
        Ok(RoleScopes { scopes })
    }

    pub fn of(&self, role: Role) -> &ScopeSet {
        &self.scopes[&role]
    }
}

impl Default for RoleScopes {
    fn default() -> Self {
        RoleScopes::new(&BTreeMap::new()).expect("the default role scopes parse")
    }
}
