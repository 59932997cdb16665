//! What is checked of a plugin before it runs: the file is a component
//! (not a core module or garbage) and its description is of a sane size;
//! its contract version is `contract`'s to tell.

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
