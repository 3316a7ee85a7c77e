//! Preset-style backbone configs: RON text (empty means the defaults), a named preset
//! (`"cpu"`, `"reference"`), optional knobs overriding it, and errors that name the plugin and
//! the field — written once here rather than in every backbone.

use crate::BackboneError;
use serde::de::DeserializeOwned;
use std::fmt::Display;

/// A named preset and the function that makes it, e.g. `("cpu", Config::cpu)`.
pub type Preset<'a, C> = (&'a str, fn() -> C);

/// Parses `text` as RON (through `trajhost-config`, as every trajhost config), with `Some(..)`
/// optional around an `Option` field's value (RON's `implicit_some`: every knob is one); empty
/// or blank text gives `R::default()`. Errors name the plugin and the field with its position.
pub fn parse_ron<R: DeserializeOwned + Default>(
    plugin: &str,
    text: &str,
) -> Result<R, BackboneError> {
    if text.trim().is_empty() {
        return Ok(R::default());
    }
    trajhost_config::Source::new(text, plugin)
        .parse_implicit_some()
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

/// One field's problem, found by [`ConfigRules::resolve`]; the config macro adds the plugin's
/// name ([`invalid`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub field: String,
    pub why: String,
}

impl Invalid {
    pub fn new(field: &str, why: impl Display) -> Self {
        Invalid {
            field: field.to_string(),
            why: why.to_string(),
        }
    }
}

/// Checks that every `(field, value)` is at least 1, naming the first that is not (the
/// config macro's `at_least_one: [..]` does this for whole fields).
pub fn at_least_one(fields: &[(&str, i64)]) -> Result<(), Invalid> {
    match fields.iter().find(|(_, v)| *v < 1) {
        Some((field, v)) => Err(Invalid::new(field, format!("must be ≥ 1, got {v}"))),
        None => Ok(()),
    }
}

/// What a backbone's config does after the text's knobs are applied to its preset (and its
/// `at_least_one` fields checked): fill the fields that follow from others (`given` names the
/// knobs the text set), then check the rest, naming the bad field ([`Invalid`]).
pub trait ConfigRules {
    /// By default every combination of values is accepted.
    fn resolve(&mut self, _given: &[&str]) -> Result<(), Invalid> {
        Ok(())
    }
}

/// A backbone's config: the struct of its resolved fields, named presets (functions the
/// plugin writes, the first being what empty text means) and RON text that picks a preset and
/// overrides any field — `(preset: "reference", width: 32)`; `Some(32)` works too — with
/// unknown fields refused and every error naming the plugin (its crate's name) and the field.
///
/// ```ignore
/// trajhost_plugin_api::backbone_config! {
///     /// The resolved configuration.
///     pub struct Config {
///         /// Width of the convolutions.
///         pub channels: i64,
///         pub feature_dim: i64,
///     }
///     presets: [cpu, reference]
///     at_least_one: [channels, feature_dim]
/// }
///
/// impl Config {
///     pub fn cpu() -> Self { Config { channels: 16, feature_dim: 64 } }
///     pub fn reference() -> Self { Config { channels: 64, feature_dim: 512 } }
/// }
///
/// impl ConfigRules for Config {
///     fn resolve(&mut self, _given: &[&str]) -> Result<(), Invalid> {
///         if self.feature_dim % self.channels != 0 {
///             return Err(Invalid::new("feature_dim", "must be a multiple of `channels`"));
///         }
///         Ok(())
///     }
/// }
/// ```
///
/// It defines `Config::from_ron(text)` (preset, knobs, the `at_least_one` fields — optional —
/// checked, then [`ConfigRules::resolve`]) and
/// implements [`FromRon`](crate::network::FromRon), so a [`Network`](crate::Network) can
/// name it, and [`preset_backbone_tests!`](crate::preset_backbone_tests) works on it.
#[macro_export]
macro_rules! backbone_config {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_meta:meta])* $field_vis:vis $field:ident : $ty:ty),* $(,)?
        }
        presets: [$default:ident $(, $preset:ident)* $(,)?] $(;)?
        $(at_least_one: [$($positive:ident),* $(,)?] $(;)?)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        $vis struct $name {
            $($(#[$field_meta])* $field_vis $field: $ty,)*
        }

        /// What the RON text holds: a preset and knobs over it.
        #[derive(Debug, Default, $crate::serde::Deserialize)]
        #[serde(crate = "trajhost_plugin_api::serde", deny_unknown_fields, default)]
        struct BackboneConfigKnobs {
            preset: Option<String>,
            $($field: Option<$ty>,)*
        }

        impl $name {
            /// Parses RON text (empty: the first preset) and checks the result.
            pub fn from_ron(text: &str) -> Result<Self, $crate::BackboneError> {
                // Expanded in the plugin's crate: its name is the plugin's.
                let plugin = env!("CARGO_PKG_NAME");
                let knobs: BackboneConfigKnobs = $crate::preset::parse_ron(plugin, text)?;
                let presets: &[$crate::preset::Preset<$name>] = &[
                    (stringify!($default), $name::$default),
                    $((stringify!($preset), $name::$preset),)*
                ];
                let chosen = knobs.preset.as_deref().unwrap_or(stringify!($default));
                let mut config = $crate::preset::choose(plugin, chosen, presets)?;
                let mut given: Vec<&str> = Vec::new();
                $(if let Some(value) = knobs.$field {
                    config.$field = value;
                    given.push(stringify!($field));
                })*
                $($(if config.$positive < 1 {
                    let why = format!("must be ≥ 1, got {}", config.$positive);
                    return Err($crate::preset::invalid(plugin, stringify!($positive), why));
                })*)?
                $crate::preset::ConfigRules::resolve(&mut config, &given)
                    .map_err(|e| $crate::preset::invalid(plugin, &e.field, e.why))?;
                Ok(config)
            }
        }

        impl $crate::network::FromRon for $name {
            fn from_ron(text: &str) -> Result<Self, $crate::BackboneError> {
                $name::from_ron(text)
            }
        }
    };
}

/// A list of exactly `N` values, written as a RON list (`[2, 5, 2]`, where `[T; N]` would
/// want a tuple); another length is refused as "needs N values, got M".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixed<T, const N: usize>(pub [T; N]);

impl<T, const N: usize> std::ops::Deref for Fixed<T, N> {
    type Target = [T; N];
    fn deref(&self) -> &[T; N] {
        &self.0
    }
}

impl<'de, T: serde::Deserialize<'de>, const N: usize> serde::Deserialize<'de> for Fixed<T, N> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let values = Vec::<T>::deserialize(deserializer)?;
        let got = values.len();
        values
            .try_into()
            .map(Fixed)
            .map_err(|_| serde::de::Error::custom(format!("needs {N} values, got {got}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::backbone_config! {
        /// A three-field config with two presets.
        struct Probe {
            /// Width.
            width: i64,
            depth: i64,
            kernel: Fixed<i64, 3>,
        }
        presets: [small, large]
        at_least_one: [width]
    }

    impl Probe {
        fn small() -> Self {
            Probe {
                width: 1,
                depth: 2,
                kernel: Fixed([1, 1, 1]),
            }
        }

        fn large() -> Self {
            Probe {
                width: 8,
                depth: 4,
                kernel: Fixed([3, 3, 3]),
            }
        }
    }

    impl ConfigRules for Probe {
        fn resolve(&mut self, given: &[&str]) -> Result<(), Invalid> {
            // A rule that follows from another knob: a new width without a depth doubles it.
            if given.contains(&"width") && !given.contains(&"depth") {
                self.depth = 2 * self.width;
            }
            at_least_one(&[("depth", self.depth)])
        }
    }

    #[test]
    fn empty_text_is_the_first_preset_and_knobs_override_the_chosen_one() {
        assert_eq!(Probe::from_ron(" ").unwrap(), Probe::small());
        assert_eq!(
            Probe::from_ron("(preset: \"large\")").unwrap(),
            Probe::large()
        );
        let c = Probe::from_ron("(preset: \"large\", depth: Some(5), kernel: [1, 2, 3])").unwrap();
        assert_eq!((c.width, c.depth, *c.kernel), (8, 5, [1, 2, 3]));
        // `Some(..)` is optional around a knob, and the rules see which knobs were given.
        assert_eq!(Probe::from_ron("(width: 3)").unwrap().depth, 6);
        assert_eq!(
            Probe::from_ron("(width: Some(3), depth: 1)").unwrap().depth,
            1
        );
    }

    #[test]
    fn errors_name_the_plugin_and_the_field() {
        // The crate expanding the macro names the plugin: here, this one.
        let plugin = "invalid trajhost-plugin-api config";
        let err = Probe::from_ron("(wdith: 5)").unwrap_err().0;
        assert!(err.starts_with(plugin) && err.contains("wdith"), "{err}");
        let err = Probe::from_ron("(kernel: [3, 3])").unwrap_err().0;
        assert!(
            err.contains("kernel") && err.contains("needs 3 values, got 2"),
            "{err}"
        );
        let err = Probe::from_ron("(preset: \"gpu\")").unwrap_err().0;
        assert_eq!(
            err,
            format!(
                "{plugin}: field `preset`: unknown preset \"gpu\", expected \"small\" or \"large\""
            )
        );
        let err = Probe::from_ron("(depth: 0)").unwrap_err().0;
        assert_eq!(err, format!("{plugin}: field `depth`: must be ≥ 1, got 0"));
        let err = Probe::from_ron("(width: -2)").unwrap_err().0;
        assert_eq!(err, format!("{plugin}: field `width`: must be ≥ 1, got -2"));
        assert!(Probe::from_ron("(preset: ")
            .unwrap_err()
            .0
            .starts_with(plugin));
    }
}
