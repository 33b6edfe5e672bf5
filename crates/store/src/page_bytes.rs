//! The byte bound of a page: how many bytes of bodies one page of a search, of history or
//! of a batch read may carry, so that a page of large resources (a 32 MiB Binary a
//! thousand times) is cut instead of read whole into memory.
//!
//! Both stores read a page's rows with each body's length, and the body itself only when
//! it is small ([`INLINE_BODY_BYTES`]); [`fit`] then takes the rows in page order while
//! they fit and reads the large bodies one at a time. A page's memory is then at most its
//! rows' small bodies plus its bound.

use crate::{ResourceVersion, StoreError};

/// Bodies up to this many bytes come with their page's rows; a larger one is read alone
/// once it is known to fit. A page of `_count` rows holds at most `_count` times this
/// before it is fitted.
pub const INLINE_BODY_BYTES: i64 = 64 * 1024;

/// The most bytes of bodies a page may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteCap {
    pub max: u64,
    /// Whether the page takes its first resource even when that alone is larger than `max`:
    /// a response's first page does (one resource is always answerable); the pages of a
    /// Bundle's later entries, which share what is left of one bound, do not.
    pub first_always: bool,
}

/// A page's row as the stores read it: the version, with its body when that was at most
/// [`INLINE_BODY_BYTES`] (empty otherwise), and the body's length.
pub type SizedRow = (ResourceVersion, u64);

/// The rows of `rows` (in page order) whose bodies together fit `cap`, each with its
/// body (read by `seq` through `read_body` where the row came without it), and whether
/// any were left out. A body gone by the time it is read (a purge in between) ends the
/// page there, as the bound would.
pub fn fit(
    rows: Vec<SizedRow>,
    cap: Option<ByteCap>,
    mut read_body: impl FnMut(i64) -> Result<Option<Vec<u8>>, StoreError>,
) -> Result<(Vec<ResourceVersion>, bool), StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    let mut used: u64 = 0;
    for (mut v, len) in rows {
        if let Some(cap) = cap {
            let free = out.is_empty() && cap.first_always;
            if !free && used.saturating_add(len) > cap.max {
                return Ok((out, true));
            }
        }
        used = used.saturating_add(len);
        if !v.deleted && v.body.len() as u64 != len {
            match read_body(v.seq)? {
                Some(body) => v.body = body,
                None => return Ok((out, true)),
            }
        }
        out.push(v);
    }
    Ok((out, false))
}

/// Bytes of the bodies of `versions`.
pub fn body_bytes(versions: &[ResourceVersion]) -> u64 {
    versions.iter().map(|v| v.body.len() as u64).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, len: usize, inline: bool) -> SizedRow {
        let v = ResourceVersion {
            resource_type: "Binary".into(),
            id: seq.to_string(),
            version: 1,
            last_updated_ms: 0,
            deleted: false,
            method: crate::Method::Put,
            body: if inline { vec![b'x'; len] } else { Vec::new() },
            seq,
        };
        (v, len as u64)
    }

    #[test]
    fn rows_are_taken_while_they_fit_and_large_bodies_read_only_then() {
        let mut read = Vec::new();
        let rows = vec![row(1, 10, true), row(2, 100, false), row(3, 100, false), row(4, 5, true)];
        let cap = ByteCap { max: 150, first_always: true };
        let (page, cut) = fit(rows, Some(cap), |seq| {
            read.push(seq);
            Ok(Some(vec![b'y'; 100]))
        })
        .unwrap();
        assert_eq!(page.iter().map(|v| v.seq).collect::<Vec<_>>(), [1, 2]);
        assert!(cut);
        assert_eq!(read, [2], "the body that did not fit is never read");
        assert_eq!(body_bytes(&page), 110);
    }

    #[test]
    fn the_first_row_is_taken_whole_only_when_the_cap_says_so() {
        let rows = || vec![row(1, 500, false), row(2, 1, true)];
        let body = |_| Ok(Some(vec![b'y'; 500]));
        let (page, cut) = fit(rows(), Some(ByteCap { max: 100, first_always: true }), body).unwrap();
        assert_eq!((page.len(), cut), (1, true));
        let (page, cut) = fit(rows(), Some(ByteCap { max: 100, first_always: false }), body).unwrap();
        assert_eq!((page.len(), cut), (0, true));
        let (page, cut) = fit(rows(), None, body).unwrap();
        assert_eq!((page.len(), cut), (2, false));
        // A large body purged before it was read ends the page.
        let (page, cut) = fit(rows(), None, |_| Ok(None)).unwrap();
        assert_eq!((page.len(), cut), (0, true));
    }

    #[test]
    fn page_columns_inline_what_this_module_says() {
        let inline = format!("<= {INLINE_BODY_BYTES} THEN");
        assert!(crate::sqlite::PAGE_COLUMNS.contains(&inline), "{}", crate::sqlite::PAGE_COLUMNS);
    }
}
