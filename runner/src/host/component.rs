//! What is checked of a plugin before it runs: the file is a component
//! (not a core module or garbage), built for a contract version this
//! runner supports, and its description is of a sane size.

use super::*;

/// A description names a module and releases: short texts, a few of them.
/// Anything larger is refused before the host keeps or prints it.
pub(super) fn check_description_size(path: &Path, description: &wit::Description) -> Result<()> {
    const TEXT: usize = 256;
    const RELEASES: usize = 1000;
    let texts = [
        &description.module_name,
        &description.release,
        &description.contract,
    ]
    .into_iter()
    .chain(&description.upgrades_from)
    .chain(&description.rolls_back_to);
    if texts.clone().any(|t| t.len() > TEXT)
        || description.upgrades_from.len() > RELEASES
        || description.rolls_back_to.len() > RELEASES
    {
        bail!(
            "{}: describe returned names longer than {TEXT} bytes or more than {RELEASES} \
             releases: not a description graft can use",
            path.display()
        );
    }
    Ok(())
}

/// Tell a core module, garbage and a component apart before wasmtime does,
/// so the error says what to do.
pub(super) fn check_header(path: &Path, bytes: &[u8]) -> Result<()> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        bail!(
            "{}: not a WebAssembly file (no \\0asm header): rebuild the plugin",
            path.display()
        );
    }
    match bytes[4..8] {
        [0x0d, 0x00, 0x01, 0x00] => Ok(()),
        [0x01, 0x00, 0x00, 0x00] => bail!(
            "{}: a core WebAssembly module, not a component: build the plugin with \
             `cargo build --target wasm32-wasip2` (or wrap it with `wasm-tools component new`)",
            path.display()
        ),
        _ => bail!(
            "{}: unknown WebAssembly encoding version {:02x?}",
            path.display(),
            &bytes[4..8]
        ),
    }
}

/// Refuse a component built for another contract version with an error
/// that names both versions.
pub(super) fn check_contract(engine: &Engine, path: &Path, component: &Component) -> Result<()> {
    let ty = component.component_type();
    let names: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .chain(ty.imports(engine).map(|(name, _)| name.to_string()))
        .filter(|name| name.starts_with(CONTRACT_PACKAGE))
        .collect();
    if !names
        .iter()
        .any(|n| n.starts_with("graft:migration/migration@"))
    {
        bail!(
            "{}: not a Graft plugin: the component does not export {CONTRACT_PACKAGE}migration",
            path.display()
        );
    }
    for name in names {
        let version = name.rsplit_once('@').map(|(_, v)| v).unwrap_or("");
        let mut parts = version.split('.').map(|p| p.parse::<u64>().ok());
        let major_minor = (parts.next().flatten(), parts.next().flatten());
        if major_minor != (Some(SUPPORTED_MAJOR_MINOR.0), Some(SUPPORTED_MAJOR_MINOR.1)) {
            bail!(
                "{}: built for contract graft:migration@{version}, but this runner supports {CONTRACT} \
                 (0.1.x): rebuild the plugin with a graft-plugin-sdk for 0.1",
                path.display()
            );
        }
    }
    Ok(())
}
