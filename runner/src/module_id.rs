//! Okapi module ids (`mod-users-19.4.5`), their versions and interface
//! versions, parsed, ordered and validated as Okapi's `ModuleId`, `SemVer`
//! and `InterfaceDescriptor` do (okapi-common, okapi-core), so that a plan
//! picks the release Okapi would pick. Okapi's own test cases are ported in
//! `tests/data/okapi/` and run by `tests/tests/integration/okapi.rs`.
//!
//! One deliberate difference: Okapi takes any character in an id; Graft
//! takes letters, digits and `._+-` only, because ids name files and are
//! printed on terminals (docs/okapi-compatibility.md).

use std::cmp::Ordering;
use std::fmt;

/// A module id: the name is everything before the first `-<digit>`, the
/// version everything after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleId {
    pub name: String,
    pub version: Version,
}

/// What an operator may name: a module id, or a module name alone (Okapi's
/// `ModuleId` without a semantic version, meaning its newest release).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSpec {
    pub name: String,
    pub version: Option<Version>,
}

/// A module version as Okapi's `SemVer`: dot-separated numbers (at least
/// the major, each at most 18 digits), an optional pre-release
/// (`-SNAPSHOT.12`, below its release) and optional build metadata
/// (`+build.7`, above the version without it, ordered as text).
#[derive(Debug, Clone)]
pub struct Version {
    text: String,
    numbers: Vec<u64>,
    pre: Vec<String>,
    metadata: Option<String>,
}

/// The characters an id may have (see the module comment).
fn id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-')
}

/// Where the version starts: after the first `-` followed by a digit.
fn version_start(id: &str) -> Option<usize> {
    let bytes = id.as_bytes();
    (1..bytes.len()).find(|&i| bytes[i - 1] == b'-' && bytes[i].is_ascii_digit())
}

impl ModuleSpec {
    /// Parse a module id or a module name; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let shown = crate::text::truncate(text, 200);
        if let Some(bad) = text.chars().find(|c| !id_char(*c)) {
            return Err(format!(
                "module {shown:?}: {bad:?} is not allowed in a module id (letters, digits, '.', '_', '+', '-')"
            ));
        }
        let (name, version) = match version_start(text) {
            Some(at) => (
                &text[..at - 1],
                Some(Version::parse(&text[at..]).map_err(|e| format!("module {shown:?}: {e}"))?),
            ),
            None => (text, None),
        };
        let name_ok = name.starts_with(|c: char| c.is_ascii_alphanumeric()) && !name.ends_with('-');
        if !name_ok {
            return Err(format!(
                "module {shown:?} is neither a module id (mod-users-19.4.5) nor a module name (mod-users)"
            ));
        }
        Ok(ModuleSpec {
            name: name.to_string(),
            version,
        })
    }

    /// Whether `id` is this module or one of its releases with this
    /// version as prefix (Okapi's `hasPrefix`: `mod-users` and
    /// `mod-users-19` both match `mod-users-19.4.5`).
    pub fn matches(&self, id: &ModuleId) -> bool {
        self.name == id.name
            && self
                .version
                .as_ref()
                .is_none_or(|prefix| id.version.has_prefix(prefix))
    }

    /// Okapi's `ModuleId.compareTo`: +-5 for another product (by name),
    /// +-4 major, +-3 minor, +-2 patch and beyond, +-1 pre-release or
    /// build, 0 equal; a name alone is below every release of it (-4).
    pub fn compare(&self, other: &ModuleSpec) -> i32 {
        compare_ids(
            (&self.name, self.version.as_ref()),
            (&other.name, other.version.as_ref()),
        )
    }

    /// The newest of `ids` of this product, if there is one above what this
    /// names (Okapi's `getLatest`).
    pub fn latest<'a>(&self, ids: impl IntoIterator<Item = &'a ModuleId>) -> Option<&'a ModuleId> {
        let mut best: Option<&ModuleId> = None;
        for id in ids.into_iter().filter(|id| id.name == self.name) {
            let floor = best.map_or(self.version.as_ref(), |b| Some(&b.version));
            if compare_ids((&id.name, Some(&id.version)), (&self.name, floor)) > 0 {
                best = Some(id);
            }
        }
        best
    }
}

/// Okapi's `ModuleId.compareTo` on (name, version) pairs, without copying
/// either (see [`ModuleSpec::compare`]).
fn compare_ids(a: (&str, Option<&Version>), b: (&str, Option<&Version>)) -> i32 {
    match a.0.cmp(b.0) {
        Ordering::Greater => return 5,
        Ordering::Less => return -5,
        Ordering::Equal => {}
    }
    match (a.1, b.1) {
        (Some(a), Some(b)) => a.compare(b),
        (Some(_), None) => 4,
        (None, Some(_)) => -4,
        (None, None) => 0,
    }
}

impl fmt::Display for ModuleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(version) => write!(f, "{}-{version}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl ModuleId {
    /// Parse `name-version`; the error says what is wrong with the id.
    pub fn parse(id: &str) -> Result<Self, String> {
        let spec = ModuleSpec::parse(id)?;
        match spec.version {
            Some(version) => Ok(ModuleId {
                name: spec.name,
                version,
            }),
            None => Err(format!(
                "module id {:?} has no version: expected name-version, e.g. mod-users-19.4.5",
                crate::text::truncate(id, 200)
            )),
        }
    }

    /// What an operator may name in a request or an install list: a whole
    /// id (`mod-users-19.4.5`) or a module name alone (`mod-users`, its
    /// newest release). `""`, `mod-users-` or `-1.0.0` are neither.
    pub fn check_request(id: &str) -> Result<(), String> {
        ModuleSpec::parse(id).map(|_| ())
    }

    /// Okapi's `ModuleId.compareTo` (see [`ModuleSpec::compare`]).
    pub fn compare(&self, other: &ModuleId) -> i32 {
        compare_ids(
            (&self.name, Some(&self.version)),
            (&other.name, Some(&other.version)),
        )
    }
}

impl fmt::Display for ModuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.name, self.version)
    }
}

impl Version {
    /// Parse as Okapi's `SemVer`; the messages start with Okapi's.
    pub fn parse(text: &str) -> Result<Self, String> {
        let shown = crate::text::truncate(text, 100);
        let mut rest = text;
        let mut numbers = Vec::new();
        loop {
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            if digits == 0 {
                return Err(if numbers.is_empty() {
                    format!("missing major version: {shown} (a version starts with a number, e.g. 19.4.5)")
                } else {
                    format!("missing version component in {shown:?} (numbers joined by '.', e.g. 19.4.5)")
                });
            }
            if digits > 18 {
                return Err(format!(
                    "at most 18 digits for numeric component in version {shown:?}"
                ));
            }
            numbers.push(rest[..digits].parse::<u64>().map_err(|e| e.to_string())?);
            rest = &rest[digits..];
            match rest.strip_prefix('.') {
                Some(after) => rest = after,
                None => break,
            }
        }
        let mut pre = Vec::new();
        if let Some(after) = rest.strip_prefix('-') {
            rest = after;
            loop {
                let end = rest.find(['+', '.']).unwrap_or(rest.len());
                if end == 0 {
                    return Err(format!(
                        "missing pre-release version component in {shown:?} (e.g. 1.0.0-SNAPSHOT.12)"
                    ));
                }
                pre.push(rest[..end].to_string());
                rest = &rest[end..];
                match rest.strip_prefix('.') {
                    Some(after) => rest = after,
                    None => break,
                }
            }
        }
        let metadata = match rest.strip_prefix('+') {
            Some(metadata) => Some(metadata.to_string()),
            None if rest.is_empty() => None,
            None => {
                return Err(format!(
                    "invalid semver: {shown} (expected numbers joined by '.', then -pre-release, then +build)"
                ))
            }
        };
        Ok(Version {
            text: text.to_string(),
            numbers,
            pre,
            metadata,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A pre-release (`1.0.0-SNAPSHOT`), which sorts below its release.
    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }

    /// What FOLIO's npm snapshots look like: three numbers, the last of at
    /// least five digits (`11.0.1000991`).
    pub fn is_npm_snapshot(&self) -> bool {
        self.numbers.len() == 3
            && self
                .text
                .split(['.', '-', '+'])
                .nth(2)
                .is_some_and(|p| p.len() >= 5)
    }

    /// Okapi's `SemVer.hasPrefix`: this version starts with `prefix`
    /// (`1.2.3` with `1.2`, `1.0.0-alpha` with `1.0.0`).
    pub fn has_prefix(&self, prefix: &Version) -> bool {
        if self.numbers.len() < prefix.numbers.len()
            || self.numbers[..prefix.numbers.len()] != prefix.numbers[..]
        {
            return false;
        }
        if self.numbers.len() > prefix.numbers.len() {
            return true;
        }
        if self.pre.len() < prefix.pre.len()
            || self.pre[..prefix.pre.len()]
                .iter()
                .zip(&prefix.pre)
                .any(|(a, b)| compare_part(a, b) != Ordering::Equal)
        {
            return false;
        }
        if self.pre.len() > prefix.pre.len() {
            return true;
        }
        match (&prefix.metadata, &self.metadata) {
            (None, _) => true,
            (Some(p), Some(m)) => p == m,
            (Some(_), None) => false,
        }
    }

    /// Okapi's `SemVer.compareTo`: +-4 major, +-3 minor, +-2 patch and
    /// beyond, +-1 pre-release or build metadata, 0 equal. `1` < `1.0` <
    /// `1.0.0`: a version with more numbers is above its prefix.
    pub fn compare(&self, other: &Version) -> i32 {
        let mut level = 4;
        for (a, b) in self.numbers.iter().zip(&other.numbers) {
            match a.cmp(b) {
                Ordering::Greater => return level,
                Ordering::Less => return -level,
                Ordering::Equal => level = (level - 1).max(2),
            }
        }
        match self.numbers.len().cmp(&other.numbers.len()) {
            Ordering::Greater => return level,
            Ordering::Less => return -level,
            Ordering::Equal => {}
        }
        let sign = |o: Ordering| match o {
            Ordering::Greater => 1,
            Ordering::Less => -1,
            Ordering::Equal => 0,
        };
        // No pre-release is above any pre-release.
        match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, false) => return 1,
            (false, true) => return -1,
            _ => {}
        }
        for (a, b) in self.pre.iter().zip(&other.pre) {
            let order = compare_part(a, b);
            if order != Ordering::Equal {
                return sign(order);
            }
        }
        let by_length = sign(self.pre.len().cmp(&other.pre.len()));
        if by_length != 0 {
            return by_length;
        }
        match (&self.metadata, &other.metadata) {
            (Some(a), Some(b)) => sign(a.cmp(b)),
            (Some(_), None) => 1,
            (None, Some(_)) => -1,
            (None, None) => 0,
        }
    }
}

/// Okapi's order of two pre-release parts: numbers numerically (of any
/// length), words as text, a word above a number.
fn compare_part(a: &str, b: &str) -> Ordering {
    let numeric = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
    match (numeric(a), numeric(b)) {
        (true, true) => {
            let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
            a.len().cmp(&b.len()).then_with(|| a.cmp(b))
        }
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.compare(other).cmp(&0)
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// An interface version as Okapi reads it: `maj.min` or `maj.min.patch`,
/// each a (possibly signed) 32-bit number; a missing patch is below 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceVersion {
    pub major: i32,
    pub minor: i32,
    pub patch: i32,
}

impl InterfaceVersion {
    pub fn parse(text: &str) -> Option<Self> {
        let parts: Vec<i32> = text
            .split('.')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        match parts[..] {
            [major, minor] => Some(InterfaceVersion {
                major,
                minor,
                patch: -1,
            }),
            [major, minor, patch] => Some(InterfaceVersion {
                major,
                minor,
                patch,
            }),
            _ => None,
        }
    }

    /// The alternatives of a version field (`"16.0 17.0"`), as Okapi splits
    /// them: on single spaces, reading up to the first that is not a
    /// version (Okapi stops there too).
    pub fn alternatives(field: &str) -> impl Iterator<Item = InterfaceVersion> + '_ {
        field
            .trim_end_matches(' ')
            .split(' ')
            .map_while(InterfaceVersion::parse)
    }

    /// Okapi's check of a version field: its first alternative is a version.
    pub fn is_valid_field(field: &str) -> bool {
        InterfaceVersion::alternatives(field).next().is_some()
    }

    /// Whether a provided version field satisfies a required one (Okapi's
    /// `isCompatible`): the same major as one alternative, and at least its
    /// minor (and patch, where the minor is the same).
    pub fn compatible(provided: &str, required: &str) -> bool {
        let Some(have) = InterfaceVersion::alternatives(provided).next() else {
            return false;
        };
        InterfaceVersion::alternatives(required).any(|need| {
            have.major == need.major
                && (have.minor > need.minor
                    || (have.minor == need.minor && need.patch <= have.patch))
        })
    }

    /// Okapi's `InterfaceDescriptor.compare` of a provided version field
    /// with a required one: for the first alternative of the same major,
    /// +-2 where the minor differs, +-1 where the patch does, 0 if equal;
    /// `None` where no alternative has the same major.
    pub fn compare(provided: &str, required: &str) -> Option<i32> {
        let have = InterfaceVersion::alternatives(provided).next()?;
        let need =
            InterfaceVersion::alternatives(required).find(|need| need.major == have.major)?;
        Some(
            match (have.minor.cmp(&need.minor), have.patch.cmp(&need.patch)) {
                (Ordering::Greater, _) => 2,
                (Ordering::Less, _) => -2,
                (_, Ordering::Greater) => 1,
                (_, Ordering::Less) => -1,
                _ => 0,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn name_is_before_first_dash_digit() {
        let id = ModuleId::parse("mod-inventory-storage-30.0.5").unwrap();
        assert_eq!(id.name, "mod-inventory-storage");
        assert_eq!(id.version.as_str(), "30.0.5");
        let id = ModuleId::parse("folio_users-11.0.1000991").unwrap();
        assert_eq!(id.name, "folio_users");
        assert!(id.version.is_npm_snapshot());
    }

    #[test]
    fn ordering() {
        assert!(v("2.0.0") > v("1.10.0"));
        assert!(v("1.10.0") > v("1.9.9"));
        assert!(v("1.0.0") > v("1.0.0-SNAPSHOT"));
        assert!(v("1.0.0-SNAPSHOT.12") > v("1.0.0-SNAPSHOT.9"));
        assert!(v("2.1.0-SNAPSHOT") > v("2.0.9"));
        assert!(v("11.0.1000991") > v("11.0.11"));
        // As Okapi: a longer version is above its prefix, build metadata
        // orders.
        assert!(v("1") < v("1.0") && v("1.0") < v("1.0.0"));
        assert!(v("1.2.3+build.7") > v("1.2.3"));
        assert!(v("1.2.3+a") < v("1.2.3+b"));
        assert!(v("1.0.0-99999999999999999999999") > v("1.0.0-9"));
    }

    fn version_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let numbers = prop::collection::vec(0u64..30, 1..5);
        let pre = prop::option::of(prop::collection::vec(
            prop_oneof![
                Just("SNAPSHOT".to_string()),
                Just("rc".to_string()),
                (0u64..20).prop_map(|n| n.to_string())
            ],
            1..3,
        ));
        let build = prop::option::of("[a-z0-9]{1,4}");
        (numbers, pre, build).prop_map(|(numbers, pre, build)| {
            let mut text = numbers
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(".");
            if let Some(parts) = pre {
                text = format!("{text}-{}", parts.join("."));
            }
            if let Some(build) = build {
                text = format!("{text}+{build}");
            }
            text
        })
    }

    proptest::proptest! {
        #[test]
        fn order_is_total_and_consistent(a in version_text(), b in version_text(), c in version_text()) {
            let (a, b, c) = (v(&a), v(&b), v(&c));
            proptest::prop_assert_eq!(a.compare(&b), -b.compare(&a));
            if a <= b && b <= c {
                proptest::prop_assert!(a <= c);
            }
            proptest::prop_assert_eq!(a == b, a.cmp(&b) == Ordering::Equal);
        }

        #[test]
        fn a_release_sorts_above_its_prereleases(release in "[0-9]{1,3}(\\.[0-9]{1,3}){0,2}", pre in "[A-Za-z0-9]{1,8}(\\.[0-9]{1,3})?") {
            let prerelease = format!("{release}-{pre}");
            proptest::prop_assert!(v(&release) > v(&prerelease));
            proptest::prop_assert!(v(&prerelease).has_prefix(&v(&release)));
        }

        #[test]
        fn raising_a_component_raises_the_version(
            numbers in proptest::collection::vec(0u64..1000, 1..5),
            at in 0usize..5,
        ) {
            let at = at % numbers.len();
            let mut higher = numbers.clone();
            higher[at] += 1;
            let text = |n: &[u64]| n.iter().map(u64::to_string).collect::<Vec<_>>().join(".");
            proptest::prop_assert!(v(&text(&higher)) > v(&text(&numbers)));
        }

        #[test]
        fn ids_round_trip(name in "(mod|folio|edge)[-_][a-z]{1,10}(-[a-z]{1,8})?", version in version_text()) {
            let id = ModuleId::parse(&format!("{name}-{version}")).unwrap();
            proptest::prop_assert_eq!(&id.name, &name);
            proptest::prop_assert_eq!(id.to_string(), format!("{name}-{version}"));
        }

        #[test]
        fn parsing_any_text_never_panics(text in "\\PC{0,40}") {
            let _ = ModuleSpec::parse(&text);
            let _ = InterfaceVersion::compatible(&text, &text);
        }
    }

    #[test]
    fn bad_ids_say_why() {
        assert!(ModuleId::parse("mod-users")
            .unwrap_err()
            .contains("no version"));
        assert!(ModuleId::parse("mod-users-1.x")
            .unwrap_err()
            .contains("missing version component"));
        assert!(ModuleId::parse("mod-users-1.0/../x")
            .unwrap_err()
            .contains("not allowed"));
        assert!(ModuleId::parse("mod-users-1234567890123456789")
            .unwrap_err()
            .contains("at most 18 digits"));
        for bad in ["", "-1.0.0", "mod-users-", "mod users"] {
            assert!(ModuleSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn same_major_and_at_least_the_minor() {
        let ok = InterfaceVersion::compatible;
        assert!(ok("16.1", "16.0"));
        assert!(ok("16.1", "16.1"));
        assert!(!ok("16.1", "16.2"));
        assert!(!ok("16.1", "17.0"));
        assert!(ok("16.1", "15.0 16.0"));
        assert!(ok("1.2.3", "1.2.1"));
        assert!(!ok("1.2.0", "1.2.1"));
        // A missing patch is below every patch, as in Okapi.
        assert!(!ok("1.2", "1.2.1"));
        assert!(ok("1.2.1", "1.2"));
    }
}
