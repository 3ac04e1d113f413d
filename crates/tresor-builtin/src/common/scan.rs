//! OpenBao's recursive SCAN over a storage prefix.
//!
//! OpenBao walks with a stack: it lists a folder, emits its leaves in order, pushes its
//! sub-folders, then pops the most recently pushed folder. Clients see that order, so we keep
//! it rather than sorting.

use tresor_sdk::storage::{Storage, StorageViewError};

/// Every leaf key under `base` (which is empty or ends in `/`), relative to `base`.
pub(crate) async fn scan(
    storage: &dyn Storage,
    base: &str,
) -> Result<Vec<String>, StorageViewError> {
    let mut keys = Vec::new();
    let mut frontier = vec![String::new()];
    while let Some(current) = frontier.pop() {
        for entry in storage.list(&format!("{base}{current}")).await? {
            let full = format!("{current}{entry}");
            if entry.ends_with('/') {
                frontier.push(full);
            } else {
                keys.push(full);
            }
        }
    }
    Ok(keys)
}
