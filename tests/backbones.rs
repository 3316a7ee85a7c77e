//! The four paper backbones (i3d, slowfast, transformer, magvit) through the real plugin boundary.

mod common;
