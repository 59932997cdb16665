//! Okapi module ids (`mod-users-19.4.5`) and the ordering of their versions.

use std::cmp::Ordering;
use std::fmt;

/// A module id: the name is everything before the first `-<digit>`, the
/// version everything after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleId {
    pub name: String,
    pub version: Version,
}

/// A module version: numeric components, then an optional pre-release
/// (`1.0.0-SNAPSHOT.12`), which sorts below its release. Equal versions may
/// be spelled differently (`1.0` and `1.0.0`).
#[derive(Debug, Clone)]
pub struct Version {
    text: String,
    numbers: Vec<u64>,
    pre: Option<String>,
}

impl ModuleId {
    /// Parse `name-version`; the error says what is wrong with the id.
    pub fn parse(id: &str) -> Result<Self, String> {
        let bytes = id.as_bytes();
        let split = (1..bytes.len()).find(|&i| bytes[i - 1] == b'-' && bytes[i].is_ascii_digit());
        let Some(split) = split else {
            return Err(format!(
                "module id {id:?} has no version: expected name-version, e.g. mod-users-19.4.5"
            ));
        };
        let name = &id[..split - 1];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(format!(
                "module id {id:?}: the name {name:?} must be letters, digits, '-', '_' or '.'"
            ));
        }
        Ok(ModuleId {
            name: name.to_string(),
            version: Version::parse(&id[split..]).map_err(|e| format!("module id {id:?}: {e}"))?,
        })
    }
}

impl ModuleId {
    /// What an operator may name in a request or an install list: a whole
    /// id (`mod-users-19.4.5`) or a module name alone (`mod-users`, its
    /// newest release). `""`, `mod-users-` or `-1.0.0` are neither.
    pub fn check_request(id: &str) -> Result<(), String> {
        if id
            .as_bytes()
            .windows(2)
            .any(|w| w[0] == b'-' && w[1].is_ascii_digit())
        {
            return ModuleId::parse(id).map(|_| ());
        }
        let ok = id.starts_with(|c: char| c.is_ascii_alphanumeric())
            && !id.ends_with(['-', '.', '_'])
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if ok {
            Ok(())
        } else {
            Err(format!(
                "module {:?} is neither a module id (mod-users-19.4.5) nor a module name (mod-users)",
                crate::text::truncate(id, 200)
            ))
        }
    }
}

impl fmt::Display for ModuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.name, self.version)
    }
}

impl Version {
    pub fn parse(text: &str) -> Result<Self, String> {
        // Build metadata (`+build.7`) does not take part in the order.
        let ordered = text.split_once('+').map_or(text, |(ordered, _)| ordered);
        let (release, pre) = match ordered.split_once('-') {
            Some((release, pre)) => (release, Some(pre.to_string())),
            None => (ordered, None),
        };
        let numbers = release
            .split('.')
            .map(|part| part.parse::<u64>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| format!("version {text:?} must be numbers joined by '.', e.g. 19.4.5"))?;
        if pre.as_deref() == Some("") {
            return Err(format!("version {text:?} ends with '-'"));
        }
        Ok(Version {
            text: text.to_string(),
            numbers,
            pre,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A pre-release (`1.0.0-SNAPSHOT`), which sorts below its release.
    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some()
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let len = self.numbers.len().max(other.numbers.len());
        for i in 0..len {
            let a = self.numbers.get(i).copied().unwrap_or(0);
            let b = other.numbers.get(i).copied().unwrap_or(0);
            match a.cmp(&b) {
                Ordering::Equal => continue,
                unequal => return unequal,
            }
        }
        match (&self.pre, &other.pre) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => compare_pre(a, b),
        }
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

/// Semver pre-release order: dot-separated parts, numbers numerically and
/// below words, a longer list above its prefix.
fn compare_pre(a: &str, b: &str) -> Ordering {
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
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
    }

    #[test]
    fn ordering() {
        assert!(v("2.0.0") > v("1.10.0"));
        assert!(v("1.10.0") > v("1.9.9"));
        assert!(v("1.0.0") > v("1.0.0-SNAPSHOT"));
        assert!(v("1.0.0-SNAPSHOT.12") > v("1.0.0-SNAPSHOT.9"));
        assert!(v("2.1.0-SNAPSHOT") > v("2.0.9"));
        // npm snapshots put a build number in the patch: still numeric.
        assert!(v("11.0.1000991") > v("11.0.11"));
        assert!(v("19.4.5") > v("19.4"));
        assert_eq!(v("1.0").cmp(&v("1.0.0")), Ordering::Equal);
    }

    #[test]
    fn build_metadata_does_not_order() {
        assert_eq!(v("1.2.3+build.7"), v("1.2.3"));
        assert!(v("1.2.3+zzz") < v("1.2.4"));
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
        (numbers, pre).prop_map(|(numbers, pre)| {
            let release = numbers
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(".");
            match pre {
                Some(parts) => format!("{release}-{}", parts.join(".")),
                None => release,
            }
        })
    }

    proptest::proptest! {
        #[test]
        fn order_is_total_and_consistent(a in version_text(), b in version_text(), c in version_text()) {
            let (a, b, c) = (v(&a), v(&b), v(&c));
            proptest::prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
            if a <= b && b <= c {
                proptest::prop_assert!(a <= c);
            }
            proptest::prop_assert_eq!(a == b, a.cmp(&b) == Ordering::Equal);
        }

        #[test]
        fn a_release_sorts_above_its_prereleases(release in version_text(), pre in "[A-Za-z0-9]{1,8}(\\.[0-9]{1,3})?") {
            let release = release.split('-').next().unwrap().to_string();
            let prerelease = format!("{}-{}", release, pre);
            proptest::prop_assert!(v(&release) > v(&prerelease));
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
    }

    #[test]
    fn bad_ids_say_why() {
        assert!(ModuleId::parse("mod-users")
            .unwrap_err()
            .contains("no version"));
        assert!(ModuleId::parse("mod-users-1.x")
            .unwrap_err()
            .contains("numbers"));
    }
}

/// An interface version `maj.min[.patch]`. A provided version satisfies a
/// required one of the same major with a minor (and patch) at least as high.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct InterfaceVersion {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl InterfaceVersion {
    pub fn parse(text: &str) -> Option<Self> {
        let parts: Vec<u64> = text
            .split('.')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        match parts[..] {
            [major, minor] => Some(InterfaceVersion {
                major,
                minor,
                patch: 0,
            }),
            [major, minor, patch] => Some(InterfaceVersion {
                major,
                minor,
                patch,
            }),
            _ => None,
        }
    }

    /// Whether this (provided) version satisfies `required`.
    pub fn satisfies(&self, required: &InterfaceVersion) -> bool {
        self.major == required.major && (self.minor, self.patch) >= (required.minor, required.patch)
    }

    /// Whether this provided version satisfies any of space-separated
    /// alternatives (`"16.0 17.0"`).
    pub fn satisfies_any(&self, alternatives: &str) -> bool {
        alternatives
            .split_whitespace()
            .filter_map(InterfaceVersion::parse)
            .any(|r| self.satisfies(&r))
    }
}

#[cfg(test)]
mod interface_tests {
    use super::InterfaceVersion;

    #[test]
    fn same_major_and_at_least_the_minor() {
        let provided = InterfaceVersion::parse("16.1").unwrap();
        assert!(provided.satisfies_any("16.0"));
        assert!(provided.satisfies_any("16.1"));
        assert!(!provided.satisfies_any("16.2"));
        assert!(!provided.satisfies_any("17.0"));
        assert!(provided.satisfies_any("15.0 16.0"));
        assert!(InterfaceVersion::parse("1.2.3")
            .unwrap()
            .satisfies_any("1.2.1"));
        assert!(!InterfaceVersion::parse("1.2.0")
            .unwrap()
            .satisfies_any("1.2.1"));
    }
}
