//! `graft new`: a plugin project for a module, in Rust, Python or
//! JavaScript, that builds and passes `graft validate` as written: the
//! ModuleDescriptor and reference data of a first release, the plugin, the
//! SDK and the contract of this graft (so the project needs nothing of
//! Graft's sources), a build script that ends in `graft package`, a script
//! that captures a fixture, and a CI job.
//!
//! The templates are files of `runner/templates` and the repository's Rust
//! template (`plugins/template`, module `mod-widgets`), compiled into the
//! binary with the SDKs they use; `{{module}}`, `{{name}}` and the like, and
//! the template module's names, are filled in here.

use crate::module_id::ModuleId;
use anyhow::{bail, Context as _, Result};
use std::path::{Path, PathBuf};

/// The languages a plugin project can be made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Rust,
    Python,
    Js,
}

/// One file of a project: where it goes, its text, whether it is a script.
struct File {
    path: &'static str,
    text: &'static str,
    script: bool,
}

const fn file(path: &'static str, text: &'static str) -> File {
    File {
        path,
        text,
        script: false,
    }
}

const fn script(path: &'static str, text: &'static str) -> File {
    File {
        path,
        text,
        script: true,
    }
}

macro_rules! template {
    ($path:literal) => {
        include_str!(concat!("../templates/", $path))
    };
}

macro_rules! sdk {
    ($path:literal) => {
        include_str!(concat!("../../plugins/", $path))
    };
}

// The package part and the Rust plugin are the repository's template
// (`plugins/template`, module `mod-widgets`), which Graft's own tests build
// and validate; its names are replaced by the new module's.
const COMMON: &[File] = &[
    file(
        "package/ModuleDescriptor.json",
        sdk!("template/package/ModuleDescriptor.json"),
    ),
    file(
        "package/reference-data/widget-types/gear.json",
        sdk!("template/package/reference-data/widget-types/gear.json"),
    ),
    file(
        "package/reference-data/widget-types/sprocket.json",
        sdk!("template/package/reference-data/widget-types/sprocket.json"),
    ),
    script("make-fixture.sh", template!("common/make-fixture.sh")),
    file("ci/graft-validate.yml", template!("common/ci.yml")),
    file("README.md", template!("common/README.md")),
    file(".gitignore", template!("common/gitignore")),
    // Contract 0.1: what the Python and JavaScript SDKs build on, and the
    // Rust SDK without its `contract-0-2` feature.
    file("wit/migration.wit", crate::host::Contract::V0_1.wit()),
];

const RUST: &[File] = &[
    file("Cargo.toml", template!("rust/Cargo.toml")),
    // The versions the SDK is built and tested with.
    file("Cargo.lock", sdk!("Cargo.lock")),
    file("src/lib.rs", sdk!("template/src/lib.rs")),
    script("build.sh", template!("rust/build.sh")),
    file(
        "graft-plugin-sdk/Cargo.toml",
        template!("rust/sdk-Cargo.toml"),
    ),
    file("graft-plugin-sdk/src/lib.rs", sdk!("sdk/src/lib.rs")),
    file(
        "graft-plugin-sdk/src/collection.rs",
        sdk!("sdk/src/collection.rs"),
    ),
    file("graft-plugin-sdk/src/data.rs", sdk!("sdk/src/data.rs")),
    file("graft-plugin-sdk/src/error.rs", sdk!("sdk/src/error.rs")),
    file("graft-plugin-sdk/src/log.rs", sdk!("sdk/src/log.rs")),
    file(
        "graft-plugin-sdk/src/required.rs",
        sdk!("sdk/src/required.rs"),
    ),
    file("graft-plugin-sdk/src/state.rs", sdk!("sdk/src/state.rs")),
    file("graft-plugin-sdk/src/chain.rs", sdk!("sdk/src/chain.rs")),
    // The contract Rust plugins are built for (the SDK's `contract-0-2`).
    file("wit/0.2.0/migration.wit", crate::host::Contract::V0_2.wit()),
];

const PYTHON: &[File] = &[
    file("src/app.py", template!("python/app.py")),
    file("src/graft_sdk.py", sdk!("python/graft_sdk.py")),
    script("build.py", sdk!("python/build.py")),
    file("requirements.txt", sdk!("python/requirements.txt")),
    script("build.sh", template!("python/build.sh")),
];

const JS: &[File] = &[
    file("src/app.js", template!("js/app.js")),
    file("src/graft-sdk.js", sdk!("js/graft-sdk.js")),
    script("build.mjs", sdk!("js/build.mjs")),
    file("package.json", template!("js/package.json")),
    file("package-lock.json", sdk!("js/package-lock.json")),
    script("build.sh", template!("js/build.sh")),
];

/// What `graft new` wrote.
#[derive(Debug, serde::Serialize)]
pub struct Project {
    pub dir: PathBuf,
    pub module: String,
    pub lang: Lang,
    pub files: Vec<PathBuf>,
    /// The commands that build, capture a fixture and validate.
    pub next: Vec<String>,
}

impl Lang {
    fn files(self) -> &'static [File] {
        match self {
            Lang::Rust => RUST,
            Lang::Python => PYTHON,
            Lang::Js => JS,
        }
    }

    /// The language's name, for people.
    pub fn label(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }

    /// The one-time set-up of the language's toolchain.
    fn setup(self) -> &'static str {
        match self {
            Lang::Rust => "rustup target add wasm32-wasip2",
            Lang::Python => "pip install -r requirements.txt",
            Lang::Js => "npm ci",
        }
    }
}

/// Write a new plugin project for `module` into `dir`, which must not
/// exist or be empty. On an error nothing is left of what was written.
pub fn create(dir: &Path, module: &str, lang: Lang) -> Result<Project> {
    check_module_name(module)?;
    if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("{}: cannot read", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{}: already exists and is not empty: choose another --dir, or remove it",
            dir.display()
        );
    }
    let name = module.strip_prefix("mod-").unwrap_or(module);
    let krate = format!("{module}-plugin");
    // Placeholders of `runner/templates`, and the template module's names,
    // replaced in one pass: a replacement is never replaced again (a module
    // named `widgets-x` must not become `widgets-x-x`).
    let crate_file = krate.replace('-', "_");
    let types = format!("{name}-types");
    let replacements: [(&str, &str); 10] = [
        ("{{module}}", module),
        ("{{name}}", name),
        ("{{crate_file}}", &crate_file),
        ("{{crate}}", &krate),
        ("{{language}}", lang.label()),
        ("{{lang}}", lang.flag()),
        ("{{setup}}", lang.setup()),
        ("mod-widgets", module),
        ("widget-types", &types),
        ("widgets", name),
    ];
    let fill = |text: &str| replace_all(text, &replacements);
    let made = !dir.exists();
    let written = write_all(dir, COMMON.iter().chain(lang.files()), &fill, lang);
    match written {
        Ok(files) => Ok(Project {
            dir: dir.to_path_buf(),
            module: module.to_string(),
            lang,
            files,
            next: vec![
                format!("cd {}", dir.display()),
                lang.setup().to_string(),
                "./build.sh".into(),
                "./make-fixture.sh".into(),
                format!("graft validate dist/{module}-1.0.0.tar.gz --fixtures fixtures"),
            ],
        }),
        Err(e) => {
            if made {
                let _ = std::fs::remove_dir_all(dir);
            }
            Err(e)
        }
    }
}

fn write_all<'a>(
    dir: &Path,
    files: impl Iterator<Item = &'a File>,
    fill: &dyn Fn(&str) -> String,
    lang: Lang,
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for file in files {
        let path = dir.join(fill(file.path));
        let text = match (lang, file.path) {
            // The SDK finds the contract beside it in the project.
            (Lang::Rust, "graft-plugin-sdk/src/lib.rs") => {
                file.text.replace("path: \"../../wit/", "path: \"../wit/")
            }
            (Lang::Js, "package-lock.json") => file
                .text
                .replace("\"graft-plugin-sdk-js\"", &fill("\"{{module}}-plugin\"")),
            // Contract and SDK sources are copied as they are.
            (_, path) if path.starts_with("graft-plugin-sdk/") || path.starts_with("wit/") => {
                file.text.to_string()
            }
            (_, "src/graft_sdk.py" | "src/graft-sdk.js" | "build.py" | "build.mjs") => {
                file.text.to_string()
            }
            _ => fill(file.text),
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("{}: cannot make the folder", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("{}: cannot write", path.display()))?;
        if file.script {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("{}: cannot make executable", path.display()))?;
        }
        written.push(path);
    }
    Ok(written)
}

/// `text` with every occurrence of each `from` replaced by its `to`, in one
/// pass from the left; at one place, the first matching pair wins.
fn replace_all(text: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for (from, to) in pairs {
            if let Some(after) = rest.strip_prefix(from) {
                out.push_str(to);
                rest = after;
                continue 'scan;
            }
        }
        let next = rest.chars().next().map_or(1, char::len_utf8);
        out.push_str(&rest[..next]);
        rest = &rest[next..];
    }
    out
}

/// A module name the project can use everywhere it appears: an Okapi
/// product name, lower case, that also names collections and a crate.
fn check_module_name(module: &str) -> Result<()> {
    let shaped = module
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase())
        && module
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !module.ends_with('-')
        && !module.contains("--");
    let parsed = ModuleId::parse(&format!("{module}-1.0.0")).ok();
    if !shaped || parsed.is_none_or(|id| id.name != module) || module.len() > 64 {
        bail!(
            "{module:?} is not a module name graft new can use: lower-case letters, digits and \
             single dashes, starting with a letter, no version (e.g. mod-widgets)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_are_checked() {
        for bad in [
            "",
            "Mod-x",
            "mod x",
            "mod-x-1.0.0",
            "mod--x",
            "mod-x-",
            "../x",
            "1mod",
        ] {
            assert!(check_module_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["mod-widgets", "mod-x2", "folio-thing"] {
            check_module_name(good).unwrap();
        }
    }

    #[test]
    fn names_are_replaced_once() {
        let pairs = [("mod-widgets", "widgets-x"), ("widgets", "widgets-x")];
        assert_eq!(
            replace_all("mod-widgets: widgets, ü widgets", &pairs),
            "widgets-x: widgets-x, ü widgets-x"
        );
    }

    #[test]
    fn every_placeholder_is_filled() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            let dir = tempfile::tempdir().unwrap();
            let project = create(&dir.path().join("p"), "mod-widgets", lang).unwrap();
            for file in &project.files {
                let text = std::fs::read_to_string(file).unwrap();
                for placeholder in ["{{module}}", "{{name}}", "{{crate", "{{lang", "{{setup}}"] {
                    assert!(
                        !text.contains(placeholder),
                        "{}: {placeholder} left",
                        file.display()
                    );
                }
            }
            assert!(dir
                .path()
                .join("p/package/reference-data/widgets-types/gear.json")
                .is_file());
            // A second run refuses to write over the project.
            let again = create(&dir.path().join("p"), "mod-widgets", lang).unwrap_err();
            assert!(format!("{again}").contains("already exists"), "{again}");
        }
    }
}
