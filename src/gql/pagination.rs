//! Cursor pagination shared by every connection type: opaque cursors, `first` bounds.

use async_graphql::SimpleObject;
use base64::Engine as _;
use uuid::Uuid;

use crate::error::AppError;
use crate::store::PageRequest;

/// Where a page ends and whether another follows.
#[derive(SimpleObject, Debug, Clone)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

/// Most items one page may hold.
pub const MAX_PAGE: i32 = 100;

/// An opaque cursor for an item id of a given kind.
pub fn encode_cursor(kind: &str, id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{kind}:{id}"))
}

/// Checks `first` and decodes `after` into a store page request.
pub fn page_request(kind: &str, first: i32, after: Option<&str>) -> Result<PageRequest, AppError> {
    if !(1..=MAX_PAGE).contains(&first) {
        return Err(AppError::bad_input("first", format!("first must be between 1 and {MAX_PAGE}")));
    }
    let after = after
        .map(|cursor| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(cursor)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|text| {
                    text.strip_prefix(&format!("{kind}:")).and_then(|id| Uuid::parse_str(id).ok())
                })
                .ok_or_else(|| AppError::bad_input("after", "after is not a cursor returned by this list"))
        })
        .transpose()?;
    Ok(PageRequest { first: first as usize, after })
}
