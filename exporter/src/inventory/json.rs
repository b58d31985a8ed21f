//! The compact JSON document of an inventory (`/api/v1/inventory`). Objects
//! of the same owners share one list (`Owners`): within the document each
//! shared list is encoded once and its text repeated for the next objects
//! that share it (at 10 000 maps of one process, one list instead of 10 000).
//! Every other encoding of these types (pretty `dump`, the list endpoints,
//! `to_value`) encodes each list as usual.
use std::{cell::RefCell, sync::Arc};

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use super::{Inventory, Owners};

/// The list encoded last and its text. The `Arc` kept here keeps its
/// address from being reused by another list.
type Encoded = (Owners, Box<RawValue>);

thread_local! {
    /// `Some` while [`to_vec`] runs.
    static LAST_LIST: RefCell<Option<Option<Encoded>>> = const { RefCell::new(None) };
}

/// `inventory` as compact JSON, each shared owner list encoded once.
pub fn to_vec(inventory: &Inventory) -> serde_json::Result<Vec<u8>> {
    /// Ends the document's cache, also on an error or a panic.
    struct Scope;
    impl Drop for Scope {
        fn drop(&mut self) {
            LAST_LIST.set(None);
        }
    }
    LAST_LIST.set(Some(None));
    let _scope = Scope;
    serde_json::to_vec(inventory)
}

/// `serialize_with` of the objects' `owners`.
pub(super) fn owners<S: Serializer>(
    owners: &Option<Owners>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let Some(list) = owners else {
        return serializer.serialize_none();
    };
    LAST_LIST.with_borrow_mut(|cache| {
        let Some(last) = cache else {
            return list.serialize(serializer);
        };
        if let Some((kept, text)) = last {
            if Arc::ptr_eq(kept, list) {
                return text.serialize(serializer);
            }
        }
        let text = serde_json::value::to_raw_value(&**list).map_err(serde::ser::Error::custom)?;
        let (_, text) = last.insert((Arc::clone(list), text));
        text.serialize(serializer)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_inventory;

    #[test]
    fn the_document_equals_serde_json_of_the_inventory() {
        let mut inventory = sample_inventory();
        let shared = inventory.links[1]
            .holders
            .owners
            .clone()
            .expect("the sample has owners");
        // Four maps: two sharing the link's list, one with an equal copy of
        // it, one with no owners known.
        let mut maps = vec![inventory.maps[0].clone(); 4];
        maps[0].holders.owners = Some(Arc::clone(&shared));
        maps[1].holders.owners = Some(Arc::clone(&shared));
        maps[2].holders.owners = Some(shared.iter().cloned().collect());
        maps[3].holders.owners = None;
        inventory.maps.extend(maps);
        assert_eq!(
            String::from_utf8(to_vec(&inventory).unwrap()).unwrap(),
            serde_json::to_string(&inventory).unwrap()
        );
        // The cache ends with the document: plain encoding goes on after it.
        assert!(LAST_LIST.with_borrow(Option::is_none));
    }
}
