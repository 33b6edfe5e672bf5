//! The grammar of a package's `name` and `version` (from its `package.json`). Both end up
//! in file names (`tsunagu package install` stores `<name>#<version>.tgz`), so a package
//! is refused when either could name anything but one plain file: no `/` beyond a scope
//! separator, no `\`, no `..`, no whitespace or control characters.
//!
//! Names follow npm's rules for new packages (validate-npm-package-name) except that
//! upper-case letters are allowed, as they were for npm's older packages: published FHIR
//! packages use them (`jp-eCSCLINS.r4`, `jp-eCheckupReport.r4`). Versions follow semver
//! 2.0, except that a core part may be the wildcard `x`/`X`, as published packages use it
//! (`1.x.x-temp`).

/// npm's limit on the length of a package name.
pub const MAX_NAME_LEN: usize = 214;
/// The semver package's limit on the length of a version.
pub const MAX_VERSION_LEN: usize = 256;

/// Checks a package name against the npm grammar: 1 to 214 characters from
/// `A-Z a-z 0-9 - . _`, not starting with `.` or `_`, optionally scoped as `@scope/name`
/// (one `/`, both parts following the same rules), and not `node_modules` or
/// `favicon.ico`. The error says why the name is refused.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("it is longer than {MAX_NAME_LEN} characters"));
    }
    if name.trim() != name {
        return Err("it has leading or trailing spaces".into());
    }
    let bare = match name.strip_prefix('@') {
        Some(scoped) => {
            let Some((scope, bare)) = scoped.split_once('/') else {
                return Err("a scoped name must be @scope/name".into());
            };
            check_name_part(scope, "scope")?;
            bare
        }
        None => name,
    };
    check_name_part(bare, "name")?;
    if ["node_modules", "favicon.ico"].iter().any(|b| b.eq_ignore_ascii_case(bare)) {
        return Err(format!("{bare} is a reserved name"));
    }
    Ok(())
}

/// One part of a name: the name proper, or its scope.
fn check_name_part(part: &str, what: &str) -> Result<(), String> {
    let Some(first) = part.chars().next() else {
        return Err(format!("the {what} is empty"));
    };
    if let Some(bad) = part.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))) {
        return Err(match bad {
            '/' | '\\' => format!("the {what} contains a path separator ({bad:?})"),
            c if c.is_whitespace() => format!("the {what} contains whitespace ({c:?})"),
            c if c.is_control() => format!("the {what} contains a control character ({c:?})"),
            c => format!("the {what} contains {c:?}; only A-Z, a-z, 0-9, '-', '.' and '_' are allowed"),
        });
    }
    if first == '.' || first == '_' {
        return Err(format!("the {what} starts with {first:?}"));
    }
    Ok(())
}

/// Checks a version against semver 2.0: `MAJOR.MINOR.PATCH`, optionally followed by
/// `-prerelease` and `+build`, each a dot-separated list of non-empty `[0-9A-Za-z-]`
/// identifiers. Numbers (core parts and numeric pre-release identifiers) have no leading
/// zero; a core part may also be the wildcard `x` or `X`. The error says why the version
/// is refused.
pub fn check_version(version: &str) -> Result<(), String> {
    if version.is_empty() {
        return Err("it is empty".into());
    }
    if version.len() > MAX_VERSION_LEN {
        return Err(format!("it is longer than {MAX_VERSION_LEN} characters"));
    }
    if let Some(bad) = version.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '+'))) {
        return Err(match bad {
            '/' | '\\' => format!("it contains a path separator ({bad:?})"),
            c if c.is_whitespace() => format!("it contains whitespace ({c:?})"),
            c if c.is_control() => format!("it contains a control character ({c:?})"),
            c => format!("it contains {c:?}; semver allows only A-Z, a-z, 0-9, '-', '.' and '+'"),
        });
    }
    let (rest, build) = match version.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (version, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 {
        return Err("it is not MAJOR.MINOR.PATCH".into());
    }
    for p in parts {
        if p.is_empty() {
            return Err("it has an empty MAJOR, MINOR or PATCH part".into());
        }
        if !(p == "x" || p == "X" || p.bytes().all(|b| b.is_ascii_digit())) {
            return Err(format!("{p:?} is neither a number nor the wildcard x"));
        }
        if p.len() > 1 && p.starts_with('0') {
            return Err(format!("{p:?} has a leading zero"));
        }
    }
    if let Some(pre) = pre {
        for id in pre.split('.') {
            check_identifier(id, "pre-release")?;
            if id.len() > 1 && id.starts_with('0') && id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("the pre-release identifier {id:?} has a leading zero"));
            }
        }
    }
    if let Some(build) = build {
        for id in build.split('.') {
            check_identifier(id, "build")?;
        }
    }
    Ok(())
}

/// A pre-release or build identifier: non-empty `[0-9A-Za-z-]` (the characters were
/// checked already, bar a second `+`).
fn check_identifier(id: &str, what: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err(format!("it has an empty {what} identifier"));
    }
    if id.contains('+') {
        return Err("it has more than one '+'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_package_names() {
        for name in [
            "hl7.fhir.r4.core",
            "hl7.fhir.r4.examples",
            "hl7.fhir.uv.sdc",
            "hl7.terminology.r4",
            "jp-core.r4",
            "jpfhir-terminology.r4",
            // The JP-CLINS and eCheckupReport packages under /work/shared/jp.
            "jp-eCSCLINS.r4",
            "jp-eCheckupReport.r4",
            "@scope/name",
            "a",
            "a_b-c.d",
        ] {
            assert_eq!(check_name(name), Ok(()), "{name}");
        }
        assert_eq!(check_name(&"a".repeat(214)), Ok(()));
    }

    #[test]
    fn refuses_bad_names() {
        for name in [
            "",
            "../../x",
            "..",
            ".",
            "/etc/x",
            "a/b",
            "a/b/c",
            "@scope/a/b",
            "@scope/../x",
            "@../x",
            "@/x",
            "@scope/",
            "@scope",
            ".hidden",
            "_private",
            "a b",
            " a",
            "a\\b",
            "..\\x",
            "a\0b",
            "a\nb",
            "a#b",
            "a:b",
            "a~b",
            "a%2Fb",
            "node_modules",
            "favicon.ico",
            "名前",
            "C:\\x",
        ] {
            assert!(check_name(name).is_err(), "{name:?} accepted");
        }
        assert!(check_name(&"a".repeat(215)).is_err());
    }

    #[test]
    fn names_say_why_they_are_refused() {
        assert_eq!(check_name("../../x").unwrap_err(), "the name contains a path separator ('/')");
        assert_eq!(check_name("..").unwrap_err(), "the name starts with '.'");
        assert_eq!(check_name("a\0b").unwrap_err(), "the name contains a control character ('\\0')");
        assert_eq!(check_name("a b").unwrap_err(), "the name contains whitespace (' ')");
    }

    /// Upper case is allowed, unlike npm's rules for new packages, because published FHIR
    /// packages use it; a deliberate difference, pinned here.
    #[test]
    fn allows_upper_case_unlike_new_npm_packages() {
        assert_eq!(check_name("UPPER"), Ok(()));
    }

    #[test]
    fn accepts_real_versions() {
        for v in [
            "4.0.1",
            "1.1.2",
            "1.1.2-url",
            "1.x.x-temp",
            "1.0.0-temp",
            "0.1.0",
            "5.0.0-ballot",
            "1.0.0-alpha.1",
            "1.0.0-0.3.7",
            "1.0.0-x.7.z.92",
            "1.0.0+20130313144700",
            "1.0.0-beta+exp.sha.5114f85",
            "1.0.0+21AF26D3----117B344092BD",
            "10.20.30",
        ] {
            assert_eq!(check_version(v), Ok(()), "{v}");
        }
    }

    #[test]
    fn refuses_bad_versions() {
        for v in [
            "",
            "1.0/../x",
            "../1",
            "..",
            "1..0",
            "1.0",
            "1",
            "1.0.0.0",
            "1.0.0/x",
            "1.0.0\\x",
            "1.0.0 ",
            " 1.0.0",
            "1.0. 0",
            "1.0.0\0",
            "1.0.0\n",
            "01.0.0",
            "1.0.0-01",
            "1.0.0-",
            "1.0.0-a..b",
            "1.0.0+",
            "1.0.0+a+b",
            "1.0.0#x",
            "v1.0.0",
            "*",
            "current",
            "latest",
            "1.0.0-ü",
        ] {
            assert!(check_version(v).is_err(), "{v:?} accepted");
        }
        assert!(check_version(&format!("1.0.0-{}", "a".repeat(300))).is_err());
    }
}
