# Shortcuts; the README's two commands work without `just`.

# Run the demo: three tenants, install, upgrade and downgrade of mod-users.
demo:
    cargo run --release -- demo

# Every test, as CI runs them.
test:
    cargo test --release --workspace
    cargo test --manifest-path plugins/Cargo.toml -p graft-plugin-sdk

# Build the runner and the sample modules' plugins.
build:
    cargo build --release

# The plugin SDK's documentation.
doc:
    cargo doc --manifest-path plugins/Cargo.toml -p graft-plugin-sdk --open

fmt:
    cargo fmt --all
    cargo fmt --all --manifest-path plugins/Cargo.toml

# Everything CI checks, on this machine.
ci:
    .ci/run

# Benchmarks B1-B6, written to docs/benchmarks.md (`just bench --quick`: about two minutes).
bench *ARGS:
    cargo run --release -p graft-bench -- {{ARGS}}

# Rebuild the fixtures of every sample module release in tests/fixtures.
fixtures:
    scripts/make-fixtures.sh

# Validate a package against fixtures, e.g. `just validate path/to/mod-users-2.0.0 tests/fixtures`.
validate PACKAGE FIXTURES="tests/fixtures":
    cargo run --release -- validate {{PACKAGE}} --fixtures {{FIXTURES}}
