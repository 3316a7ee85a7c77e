//! Reading RON configuration files with errors a person can act on: `file:line:column: what`.

use anyhow::{anyhow, Result};
use serde::de::DeserializeOwned;

/// Parses RON text; `source` (usually the path) and the position prefix every syntax or
/// unknown-field error.
pub fn parse<T: DeserializeOwned>(text: &str, source: &str) -> Result<T> {
    ron::from_str(text).map_err(|e| {
        anyhow!(
            "{source}:{}:{}: {}",
            e.position.line,
            e.position.col,
            e.code
        )
    })
}
