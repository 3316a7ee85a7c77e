//! The four trajectory classes and their label order: the part of the spec that configs,
//! trajectories and labels all name.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Linear,
    Circular,
    Helical,
    Parabolic,
}

impl Class {
    /// Label order: the `labels` tensor holds the index into this array.
    pub const ALL: [Class; 4] = [
        Class::Linear,
        Class::Circular,
        Class::Helical,
        Class::Parabolic,
    ];
    pub const NAMES: [&'static str; 4] = ["linear", "circular", "helical", "parabolic"];

    pub fn index(self) -> u8 {
        self as u8
    }

    pub fn from_index(i: u8) -> Option<Class> {
        Class::ALL.get(i as usize).copied()
    }

    pub fn name(self) -> &'static str {
        Class::NAMES[self as usize]
    }

    pub fn from_name(name: &str) -> Option<Class> {
        Class::NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| Class::ALL[i])
    }
}
