//! `graft package` and package archives as a vendor and an operator meet
//! them: a package assembled from its parts installs from its archive; each
//! bad part is refused with the part named and nothing written; a hostile or
//! damaged archive in the modules folder is listed as unusable and refused
//! by install with one line, without touching the tenant.

use crate::common::{assert_clean_error, graft, json, stderr};
use graft::test_support::{copy_dir, package_dir, package_source, raw_archive, RawEntry};
use std::path::{Path, PathBuf};
use std::process::Output;
use tempfile::TempDir;

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A vendor's source folder of mod-users 2.0.0: descriptor and data, and
/// the built plugin beside it (not inside).
fn source(work: &Path) -> (PathBuf, PathBuf) {
    let source = package_source("mod-users-2.0.0", &work.join("source"));
    let plugin = work.join("mod_users.wasm");
    std::fs::copy(package_dir("mod-users-2.0.0").join("plugin.wasm"), &plugin).unwrap();
    (source, plugin)
}

fn package(data: &Path, source: &Path, plugin: &Path, out: &Path) -> Output {
    graft(
        data,
        &[
            "--json",
            "package",
            s(source),
            "--plugin",
            s(plugin),
            "--out",
            s(out),
        ],
    )
}

#[test]
fn an_assembled_package_installs_from_its_archive() {
    let work = TempDir::new().unwrap();
    let data = work.path().join("data");
    let (source, plugin) = source(work.path());
    let dist = work.path().join("dist");
    let output = package(&data, &source, &plugin, &dist);
    assert!(output.status.success(), "{}", stderr(&output));
    let result = json(&output);
    let sha = result["sha256"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(dist.join("mod-users-2.0.0.tar.gz.sha256")).unwrap(),
        format!("{sha}  mod-users-2.0.0.tar.gz\n")
    );
    assert!(dist.join("mod-users-2.0.0/plugin.wasm").is_file());
    // Packing again gives the same archive: reproducible for checksums.
    let again = json(&package(&data, &source, &plugin, &dist));
    assert_eq!(again["sha256"], result["sha256"]);

    // An operator's modules folder: 1.1.0 as a folder, 2.0.0 as the archive.
    let modules = work.path().join("modules");
    for release in ["mod-users-1.0.0", "mod-users-1.1.0"] {
        copy_dir(&package_dir(release), &modules.join(release));
    }
    for file in ["mod-users-2.0.0.tar.gz", "mod-users-2.0.0.tar.gz.sha256"] {
        std::fs::copy(dist.join(file), modules.join(file)).unwrap();
    }
    let m = s(&modules);
    let run = |args: &[&str]| {
        let output = graft(&data, &[&["--modules", m], args].concat());
        assert!(
            output.status.success(),
            "graft {args:?}: {}",
            stderr(&output)
        );
        output
    };
    run(&["tenant", "create", "diku"]);
    run(&[
        "install",
        "--tenant",
        "diku",
        "mod-users-1.1.0",
        "--load-sample",
    ]);
    run(&["install", "--tenant", "diku", "mod-users-2.0.0"]);
    let status = json(&run(&["--json", "status", "--tenant", "diku"]));
    assert!(status.to_string().contains("mod-users-2.0.0"), "{status}");
}

#[test]
fn a_bad_part_is_refused_and_nothing_is_written() {
    let work = TempDir::new().unwrap();
    let data = work.path().join("data");
    let (source, plugin) = source(work.path());
    let dist = work.path().join("dist");
    let written = || -> Vec<String> {
        std::fs::read_dir(&dist)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };

    // No descriptor: bad input, exit 2.
    let empty = work.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert_clean_error(
        &graft(
            &data,
            &[
                "package",
                s(&empty),
                "--plugin",
                s(&plugin),
                "--out",
                s(&dist),
            ],
        ),
        2,
        "no ModuleDescriptor.json",
    );
    // No plugin.
    assert_clean_error(
        &graft(&data, &["package", s(&source), "--out", s(&dist)]),
        2,
        "no such component: build the plugin first, or name it with --plugin",
    );

    // The plugin of another release: the describe check fails, exit 1.
    let wrong = work.path().join("wrong");
    copy_dir(&source, &wrong);
    let descriptor = std::fs::read_to_string(wrong.join("ModuleDescriptor.json"))
        .unwrap()
        .replace("mod-users-2.0.0", "mod-users-2.0.1");
    std::fs::write(wrong.join("ModuleDescriptor.json"), descriptor).unwrap();
    let output = package(&data, &wrong, &plugin, &dist);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let result = json(&output);
    let failed: Vec<&str> = result["validation"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["describe"], "{result:#}");
    assert!(result["validation"]["checks"]
        .to_string()
        .contains("describes itself as mod-users 2.0.0"));
    assert!(written().is_empty(), "written: {:?}", written());

    // A data file that is not JSON: the data-folders check names it.
    let broken = work.path().join("broken");
    copy_dir(&source, &broken);
    std::fs::write(broken.join("reference-data/groups/bad.json"), "{not json").unwrap();
    let output = package(&data, &broken, &plugin, &dist);
    assert_eq!(output.status.code(), Some(1));
    let result = json(&output);
    assert!(
        result["validation"]["checks"]
            .to_string()
            .contains("bad.json"),
        "{result:#}"
    );
    assert!(written().is_empty(), "written: {:?}", written());

    // A link in a data folder is never followed into the package.
    let linked = work.path().join("linked");
    copy_dir(&source, &linked);
    std::os::unix::fs::symlink(
        "/etc/passwd",
        linked.join("reference-data/groups/passwd.json"),
    )
    .unwrap();
    assert_clean_error(
        &graft(
            &data,
            &[
                "package",
                s(&linked),
                "--plugin",
                s(&plugin),
                "--out",
                s(&dist),
            ],
        ),
        2,
        "confinement",
    );
    assert!(written().is_empty(), "written: {:?}", written());

    // A file that is not a component.
    let text = work.path().join("not.wasm");
    std::fs::write(&text, "hello").unwrap();
    let output = package(&data, &source, &text, &dist);
    assert_eq!(output.status.code(), Some(1));
    assert!(written().is_empty(), "written: {:?}", written());
}

#[test]
fn a_hostile_or_damaged_archive_is_refused_by_install() {
    let work = TempDir::new().unwrap();
    let data = work.path().join("data");
    let modules = work.path().join("modules");
    copy_dir(
        &package_dir("mod-users-1.0.0"),
        &modules.join("mod-users-1.0.0"),
    );
    let m = s(&modules);
    assert!(graft(&data, &["--modules", m, "tenant", "create", "diku"])
        .status
        .success());
    let descriptor =
        std::fs::read(package_dir("mod-users-1.1.0").join("ModuleDescriptor.json")).unwrap();
    let file = tar::EntryType::Regular;
    let cases: Vec<(Vec<RawEntry>, &str)> = vec![
        (
            vec![
                (
                    "mod-users-1.1.0/ModuleDescriptor.json",
                    file,
                    &descriptor,
                    None,
                ),
                (
                    "mod-users-1.1.0/plugin.wasm",
                    tar::EntryType::Symlink,
                    b"",
                    Some("/etc/passwd"),
                ),
            ],
            "\"mod-users-1.1.0/plugin.wasm\": confinement: a Symlink entry",
        ),
        (
            vec![("mod-users-1.1.0/../../escape.json", file, b"{}", None)],
            "confinement: an entry's path must stay inside the package",
        ),
        (
            // No plugin: the package inside is checked as a folder is.
            vec![(
                "mod-users-1.1.0/ModuleDescriptor.json",
                file,
                &descriptor,
                None,
            )],
            "the plugin of mod-users-1.1.0 is missing",
        ),
    ];
    let archive = modules.join("mod-users-1.1.0.tar.gz");
    for (entries, expected) in cases {
        std::fs::write(&archive, raw_archive(&entries)).unwrap();
        let listed = graft(&data, &["--modules", m, "modules", "list"]);
        assert!(listed.status.success());
        assert!(
            String::from_utf8_lossy(&listed.stdout).contains(expected),
            "{expected:?} not listed: {}",
            String::from_utf8_lossy(&listed.stdout)
        );
        assert_clean_error(
            &graft(
                &data,
                &[
                    "--modules",
                    m,
                    "install",
                    "--tenant",
                    "diku",
                    "mod-users-1.1.0",
                ],
            ),
            2,
            expected,
        );
    }
    assert!(!work.path().join("escape.json").exists());

    // A damaged archive: its checksum file says so.
    let (source, plugin) = source(work.path());
    let dist = work.path().join("dist");
    assert!(package(&data, &source, &plugin, &dist).status.success());
    std::fs::remove_file(&archive).unwrap();
    let archive = modules.join("mod-users-2.0.0.tar.gz");
    let mut bytes = std::fs::read(dist.join("mod-users-2.0.0.tar.gz")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&archive, bytes).unwrap();
    std::fs::copy(
        dist.join("mod-users-2.0.0.tar.gz.sha256"),
        modules.join("mod-users-2.0.0.tar.gz.sha256"),
    )
    .unwrap();
    assert_clean_error(
        &graft(
            &data,
            &[
                "--modules",
                m,
                "install",
                "--tenant",
                "diku",
                "mod-users-2.0.0",
            ],
        ),
        2,
        "the archive is damaged or not the one published",
    );
    // An archive named for another module than it holds.
    std::fs::remove_file(modules.join("mod-users-2.0.0.tar.gz.sha256")).unwrap();
    std::fs::copy(
        dist.join("mod-users-2.0.0.tar.gz"),
        modules.join("mod-users-2.0.1.tar.gz"),
    )
    .unwrap();
    std::fs::remove_file(&archive).unwrap();
    assert_clean_error(
        &graft(
            &data,
            &[
                "--modules",
                m,
                "install",
                "--tenant",
                "diku",
                "mod-users-2.0.1",
            ],
        ),
        2,
        "holds mod-users-2.0.0: name the file mod-users-2.0.0.tar.gz",
    );
    // The tenant was never touched.
    let status = json(&graft(
        &data,
        &["--json", "--modules", m, "status", "--tenant", "diku"],
    ));
    assert!(!status.to_string().contains("mod-users-"), "{status}");
}
