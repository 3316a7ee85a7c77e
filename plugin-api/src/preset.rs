//! Preset-style backbone configs: RON text (empty means the defaults), a named preset
//! (`"cpu"`, `"reference"`), optional knobs overriding it, and errors that name the plugin and
//! the field — written once here rather than in every backbone.

use crate::BackboneError;
use serde::de::DeserializeOwned;
use std::fmt::Display;

/// A named preset and the function that makes it, e.g. `("cpu", Config::cpu)`.
pub type Preset<'a, C> = (&'a str, fn() -> C);

/// Parses `text` as RON (through `trajhost-config`, as every trajhost config); empty or blank
/// text gives `R::default()`. Errors name the field with its line and column.
pub fn parse_ron<R: DeserializeOwned + Default>(
    plugin: &str,
    text: &str,
) -> Result<R, BackboneError> {
    if text.trim().is_empty() {
        return Ok(R::default());
    }
    trajhost_config::Source::new(text, plugin)
        .parse()
        .map_err(|e| BackboneError(format!("invalid {plugin} config: {}", e.at_field())))
}

/// The preset called `name`; an unknown name is an error listing the known ones.
pub fn choose<C>(plugin: &str, name: &str, presets: &[Preset<C>]) -> Result<C, BackboneError> {
    match presets.iter().find(|(known, _)| *known == name) {
        Some((_, make)) => Ok(make()),
        None => {
            let known: Vec<String> = presets.iter().map(|(n, _)| format!("{n:?}")).collect();
            Err(invalid(
                plugin,
                "preset",
                format!("unknown preset {name:?}, expected {}", known.join(" or ")),
            ))
        }
    }
}

/// An error about one field: ``invalid <plugin> config: field `<field>`: <why>``.
pub fn invalid(plugin: &str, field: &str, why: impl Display) -> BackboneError {
    BackboneError(format!("invalid {plugin} config: field `{field}`: {why}"))
}

/// Checks that every `(field, value)` is at least 1, naming the first that is not.
pub fn at_least_one(plugin: &str, fields: &[(&str, i64)]) -> Result<(), BackboneError> {
    match fields.iter().find(|(_, v)| *v < 1) {
        Some((field, v)) => Err(invalid(plugin, field, format!("must be ≥ 1, got {v}"))),
        None => Ok(()),
    }
}

/// A backbone's whole config from its fields and defaults, for a plugin with one size (the
/// `cpu` preset): RON text, empty meaning every default, unknown fields refused, and errors
/// naming the plugin and the field — without the plugin depending on `serde` itself.
///
/// ```ignore
/// trajhost_plugin_api::backbone_config! {
///     /// `(channels: 16, feature_dim: 64)`; every field is optional.
///     pub struct Config {
///         /// Width of the convolutions.
///         pub channels: i64 = 16,
///         pub feature_dim: i64 = 64,
///     }
/// }
/// let config = Config::from_ron(text)?;
/// ```
///
/// The struct gains `preset: String` (default `"cpu"`, the only one accepted), because the
/// shipped training configs say `backbone: "(preset: \"cpu\")"`, and `cpu()` (the defaults),
/// so [`preset_backbone_tests!`](crate::preset_backbone_tests) works on it. Errors name the
/// plugin by its crate's name.
#[macro_export]
macro_rules! backbone_config {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_meta:meta])* $field_vis:vis $field:ident : $ty:ty = $default:expr),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, $crate::serde::Deserialize)]
        #[serde(crate = "trajhost_plugin_api::serde", deny_unknown_fields, default)]
        $vis struct $name {
            /// `"cpu"`, the only preset.
            pub preset: String,
            $($(#[$field_meta])* $field_vis $field: $ty,)*
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    preset: "cpu".into(),
                    $($field: $default,)*
                }
            }
        }

        impl $name {
            /// Parses RON text (empty: every default).
            pub fn from_ron(text: &str) -> Result<Self, $crate::BackboneError> {
                // Expanded in the plugin's crate: its name is the plugin's.
                let plugin = env!("CARGO_PKG_NAME");
                let config: Self = $crate::preset::parse_ron(plugin, text)?;
                $crate::preset::choose(plugin, &config.preset, &[("cpu", || ())])?;
                Ok(config)
            }

            /// The one preset: every default.
            pub fn cpu() -> Self {
                Self::default()
            }
        }

        impl $crate::network::FromRon for $name {
            fn from_ron(text: &str) -> Result<Self, $crate::BackboneError> {
                $name::from_ron(text)
            }
        }
    };
}

/// Copies each `Some` knob of `raw` onto `config`: `override_fields!(config, raw; width, depth)`.
#[macro_export]
macro_rules! override_fields {
    ($config:ident, $raw:ident; $($field:ident),+ $(,)?) => {
        $(if let Some(value) = $raw.$field {
            $config.$field = value;
        })+
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Raw {
        preset: String,
        width: Option<i64>,
    }

    #[derive(Debug, PartialEq)]
    struct Config {
        width: i64,
    }

    #[test]
    fn empty_text_is_the_default_and_knobs_override_the_preset() {
        assert_eq!(parse_ron::<Raw>("probe", " ").unwrap(), Raw::default());
        let raw: Raw = parse_ron("probe", "(preset: \"small\", width: Some(7))").unwrap();
        let mut config =
            choose("probe", &raw.preset, &[("small", || Config { width: 1 })]).unwrap();
        override_fields!(config, raw; width);
        assert_eq!(config, Config { width: 7 });
    }

    crate::backbone_config! {
        /// A two-field config.
        struct Derived {
            /// Width.
            width: i64 = 3,
            flags: Vec<bool> = vec![true],
        }
    }

    #[test]
    fn a_derived_config_has_defaults_and_names_plugin_and_field_in_errors() {
        let all_default = Derived {
            preset: "cpu".into(),
            width: 3,
            flags: vec![true],
        };
        assert_eq!(Derived::from_ron(" ").unwrap(), all_default);
        assert_eq!(Derived::cpu(), all_default);
        let c = Derived::from_ron("(preset: \"cpu\", width: 5)").unwrap();
        assert_eq!((c.width, c.flags), (5, vec![true]));
        // The crate expanding the macro names the plugin: here, this one.
        let err = Derived::from_ron("(wdith: 5)").unwrap_err().0;
        assert!(
            err.starts_with("invalid trajhost-plugin-api config:") && err.contains("wdith"),
            "{err}"
        );
        let err = Derived::from_ron("(preset: \"reference\")").unwrap_err().0;
        assert_eq!(
            err,
            "invalid trajhost-plugin-api config: field `preset`: unknown preset \"reference\", expected \"cpu\""
        );
    }

    #[test]
    fn errors_name_the_plugin_and_the_field() {
        let err = parse_ron::<Raw>("probe", "(wdith: Some(3))").unwrap_err().0;
        assert!(
            err.starts_with("invalid probe config: 1:") && err.contains("wdith"),
            "{err}"
        );
        let presets: &[Preset<Config>] = &[
            ("cpu", || Config { width: 1 }),
            ("reference", || Config { width: 2 }),
        ];
        let err = choose("probe", "gpu", presets).unwrap_err().0;
        assert_eq!(err, "invalid probe config: field `preset`: unknown preset \"gpu\", expected \"cpu\" or \"reference\"");
        assert!(at_least_one("probe", &[("a", 1), ("b", 2)]).is_ok());
        let err = at_least_one("probe", &[("a", 1), ("b", 0), ("c", -1)])
            .unwrap_err()
            .0;
        assert_eq!(err, "invalid probe config: field `b`: must be ≥ 1, got 0");
    }
}
