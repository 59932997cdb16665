//! JUnit XML, the report format CI systems (GitLab, Jenkins, GitHub
//! actions' test reporters) read: one test suite for the package's own
//! checks and one per fixture, one test case per check. A failed check is a
//! `<failure>`, a skipped one `<skipped>`, a warning passes with its details
//! in `<system-out>`.

use super::{Check, Status, Validation};
use std::fmt::Write as _;

pub fn render(validation: &Validation) -> String {
    let module = validation.module.as_deref().unwrap_or("package");
    let mut suites = vec![(
        format!("{module}: package"),
        0u64,
        validation.checks.iter().collect::<Vec<_>>(),
    )];
    for fixture in &validation.fixtures {
        suites.push((
            format!(
                "{module}: fixture {}",
                fixture
                    .fixture
                    .file_name()
                    .unwrap_or(fixture.fixture.as_os_str())
                    .to_string_lossy()
            ),
            fixture.duration_ms,
            fixture.checks.iter().collect(),
        ));
    }
    let count =
        |checks: &[&Check], status: Status| checks.iter().filter(|c| c.status == status).count();
    let all: Vec<&Check> = validation.all_checks().map(|(_, c)| c).collect();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">",
        escape(&format!("graft validate {module}")),
        all.len(),
        count(&all, Status::Fail),
        count(&all, Status::Skip)
    );
    for (name, duration_ms, checks) in &suites {
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            escape(name),
            checks.len(),
            count(checks, Status::Fail),
            count(checks, Status::Skip),
            *duration_ms as f64 / 1000.0
        );
        for check in checks {
            let _ = write!(
                xml,
                "    <testcase classname=\"{}\" name=\"{}\"",
                escape(name),
                check.check
            );
            let body = details(check);
            match check.status {
                Status::Pass if check.details.is_empty() => xml.push_str("/>\n"),
                Status::Pass | Status::Warn => {
                    let _ = write!(
                        xml,
                        ">\n      <system-out>{}</system-out>\n    </testcase>\n",
                        escape(&body)
                    );
                }
                Status::Fail => {
                    let _ = write!(
                        xml,
                        ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
                        escape(&check.message),
                        check.check,
                        escape(&body)
                    );
                }
                Status::Skip => {
                    let _ = write!(
                        xml,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                        escape(&check.message)
                    );
                }
            }
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

fn details(check: &Check) -> String {
    let mut text = check.message.clone();
    for line in &check.details {
        text.push('\n');
        text.push_str(line);
    }
    text
}

/// Escape text for XML attributes and content; characters XML 1.0 cannot
/// hold at all (most control characters) become U+FFFD.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::FixtureResult;
    use std::path::PathBuf;

    #[test]
    fn failures_and_skips_are_counted_and_escaped() {
        let validation = Validation {
            package: PathBuf::from("modules/mod-x-2.0.0"),
            module: Some("mod-x-2.0.0".into()),
            ok: false,
            checks: vec![Check::new("descriptor", Status::Pass, "ok")],
            fixtures: vec![FixtureResult {
                fixture: PathBuf::from("fixtures/mod-x-1.0.0.json"),
                release: "mod-x-1.0.0".into(),
                duration_ms: 1500,
                checks: vec![
                    Check::new("idempotent", Status::Fail, "record <a> & \"b\"")
                        .with_details(vec!["collection c\u{1}".into()]),
                    Check::new("rollback", Status::Skip, "no rollback"),
                ],
            }],
            not_applicable: Vec::new(),
        };
        let xml = render(&validation);
        assert!(xml.contains("<testsuites name=\"graft validate mod-x-2.0.0\" tests=\"3\" failures=\"1\" skipped=\"1\">"), "{xml}");
        assert!(
            xml.contains("failures=\"1\" skipped=\"1\" time=\"1.500\""),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<failure message=\"record &lt;a&gt; &amp; &quot;b&quot;\" type=\"idempotent\">"
            ),
            "{xml}"
        );
        assert!(xml.contains("collection c\u{fffd}"), "{xml}");
        assert!(xml.contains("<skipped message=\"no rollback\"/>"), "{xml}");
    }
}
