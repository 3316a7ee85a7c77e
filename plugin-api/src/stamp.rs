//! The first thing the host reads from a plugin file, before `abi_stable` sees it.
//!
//! `abi_stable` refuses a plugin whose layout differs, but with a long layout report; this
//! small record lets the host say plainly "built for plugin-api 1, this host speaks 2" or
//! "built against libtorch 2.12, this host uses 2.13". **This struct is frozen**: never change
//! it. If it must change, add a new symbol (`trajhost_plugin_stamp_v2`) and keep this one.

use std::ffi::{c_char, CStr};

/// The exported symbol, a `StampFn`.
pub const STAMP_SYMBOL: &[u8] = b"trajhost_plugin_stamp";

/// Marks a record as a trajhost stamp ("trajhost" in ASCII).
pub const STAMP_MAGIC: u64 = u64::from_be_bytes(*b"trajhost");

/// Static facts about a plugin. Every pointer is a NUL-terminated string with `'static` life
/// inside the plugin's image (plugins are never unloaded).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PluginStamp {
    pub magic: u64,
    pub api_version: u32,
    pub name: *const c_char,
    pub plugin_version: *const c_char,
    pub fingerprint: *const c_char,
}

/// The signature of [`STAMP_SYMBOL`].
pub type StampFn = unsafe extern "C" fn() -> PluginStamp;

/// A stamp read into owned strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StampInfo {
    pub api_version: u32,
    pub name: String,
    pub plugin_version: String,
    pub fingerprint: String,
}

impl PluginStamp {
    /// The stamp of a plugin built against this copy of the crate.
    pub const fn current(name: &'static CStr, plugin_version: &'static CStr) -> Self {
        PluginStamp {
            magic: STAMP_MAGIC,
            api_version: crate::PLUGIN_API_VERSION,
            name: name.as_ptr(),
            plugin_version: plugin_version.as_ptr(),
            fingerprint: crate::FINGERPRINT.as_ptr(),
        }
    }

    /// Copies the strings out; `None` when the magic is wrong or a pointer is null.
    ///
    /// # Safety
    /// Non-null pointers must point to NUL-terminated strings that outlive the call.
    pub unsafe fn read(&self) -> Option<StampInfo> {
        if self.magic != STAMP_MAGIC {
            return None;
        }
        let text = |p: *const c_char| {
            (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
        };
        Some(StampInfo {
            api_version: self.api_version,
            name: text(self.name)?,
            plugin_version: text(self.plugin_version)?,
            fingerprint: text(self.fingerprint)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_current_stamp_reads_back() {
        let stamp = PluginStamp::current(c"probe", c"1.2.3");
        let info = unsafe { stamp.read() }.unwrap();
        assert_eq!(info.name, "probe");
        assert_eq!(info.plugin_version, "1.2.3");
        assert_eq!(info.api_version, crate::PLUGIN_API_VERSION);
        assert_eq!(info.fingerprint, crate::FINGERPRINT.to_str().unwrap());
        assert!(info.fingerprint.starts_with("tch 0.26 / libtorch "));
    }

    #[test]
    fn wrong_magic_or_null_strings_are_not_stamps() {
        let mut stamp = PluginStamp::current(c"probe", c"1");
        stamp.magic = 0;
        assert!(unsafe { stamp.read() }.is_none());
        let mut stamp = PluginStamp::current(c"probe", c"1");
        stamp.name = std::ptr::null();
        assert!(unsafe { stamp.read() }.is_none());
    }
}
