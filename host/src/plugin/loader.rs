//! Loading one plugin file, refusing incompatible ones with a message that says why.
//!
//! Each path is opened through `abi_stable`'s library-header API rather than
//! `RootModule::load_from_file`, which caches one module per interface type and would hand
//! back the first plugin for every later path.

use super::backbone::PluginBackbone;
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use tch::Device;
use trajhost_plugin_api::{
    abi_stable::library::lib_header_from_path,
    stamp::{StampFn, StampInfo, STAMP_SYMBOL},
    BackboneModRef, PluginDevice, FINGERPRINT, PLUGIN_API_VERSION,
};

/// A loaded, compatible plugin library. Libraries are never unloaded: the tensors and trait
/// objects it creates point into its code.
pub struct Plugin {
    pub path: PathBuf,
    pub stamp: StampInfo,
    /// Lowercase hex SHA-256 of the file, read before it was opened: a run records it, so
    /// loading the run later notices another build under the same name.
    pub sha256: String,
    module: BackboneModRef,
}

impl Plugin {
    pub fn load(path: &Path) -> Result<Plugin> {
        let shown = path.display();
        if path.is_dir() {
            bail!("{shown} is a directory, not a plugin file (give the lib<name>.so built from it, e.g. target/release/lib<name>.so)");
        }
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => bail!("{shown} is not a regular file, not a plugin"),
            Err(_) => bail!("plugin file not found: {shown}"),
        }
        super::elf::check_shared_library(path)?;
        let (_, sha256) = trajhost_dataset::shard::hash_file(path)
            .with_context(|| format!("reading plugin {shown}"))?;
        let stamp = read_stamp(path)?;
        check_compatible(&stamp, path)?;
        let module = lib_header_from_path(path)
            .and_then(|header| header.init_root_module::<BackboneModRef>())
            .map_err(|e| {
                anyhow!(
                    "plugin '{}' ({shown}) has an incompatible ABI: {e}",
                    stamp.name
                )
            })?;
        Ok(Plugin {
            path: path.to_path_buf(),
            stamp,
            sha256,
            module,
        })
    }

    pub fn name(&self) -> &str {
        &self.stamp.name
    }

    /// Builds the backbone from its RON configuration on `device`.
    pub fn build(&self, config: &str, device: Device) -> Result<PluginBackbone> {
        let device = PluginDevice::try_from(device).map_err(|e| anyhow!(e))?;
        let extractor = (self.module.build())(config.into(), device)
            .into_result()
            .map_err(|e| anyhow!("plugin '{}' could not build its backbone: {e}", self.name()))?;
        Ok(PluginBackbone::new(self.name().to_string(), extractor))
    }
}

/// Reads the stamp, the one thing every trajhost plugin exports whatever its version.
fn read_stamp(path: &Path) -> Result<StampInfo> {
    let shown = path.display();
    // SAFETY: opening runs the library's initialisers; a plugin is trusted code the user
    // chose to load. The handle is leaked on purpose (plugins are never unloaded).
    let library = unsafe { libloading::Library::new(path) }
        .with_context(|| format!("{shown} is not a trajhost plugin: it cannot be loaded"))?;
    let library = Box::leak(Box::new(library));
    // SAFETY: the symbol's type is fixed by the frozen stamp contract.
    let stamp_fn = unsafe { library.get::<StampFn>(STAMP_SYMBOL) }.map_err(|_| {
        anyhow!("{shown} is not a trajhost plugin: it exports no `trajhost_plugin_stamp` (register the backbone with `export_backbone!`)")
    })?;
    // SAFETY: a stamp's strings are static in the plugin image, which stays loaded.
    unsafe { stamp_fn().read() }
        .ok_or_else(|| anyhow!("{shown} is not a trajhost plugin: its stamp is malformed"))
}

fn check_compatible(stamp: &StampInfo, path: &Path) -> Result<()> {
    let (name, shown) = (&stamp.name, path.display());
    if stamp.api_version != PLUGIN_API_VERSION {
        bail!(
            "plugin '{name}' ({shown}) was built for plugin-api version {found}, but this host expects version {PLUGIN_API_VERSION}: rebuild the plugin against the current trajhost-plugin-api",
            found = stamp.api_version
        );
    }
    let expected = FINGERPRINT.to_string_lossy();
    if stamp.fingerprint != expected {
        bail!(
            "plugin '{name}' ({shown}) was built against {found}, but this host uses {expected}: rebuild the plugin with the same tch and libtorch",
            found = stamp.fingerprint
        );
    }
    Ok(())
}
