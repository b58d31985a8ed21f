//! The label text of every program and map, kept from one page to the next.
//! Most of an object's series never change between scrapes: its labels (id,
//! name, type, and the `_info` extras) are escaped and formatted once, and
//! reused while the object's identity and every field they were made from
//! are equal; only the values are written fresh. A fragment is checked
//! against the object before reuse (the escaped name, type, tag and
//! attach_to compared byte by byte with the object's, the numbers
//! directly), so a page from reused fragments equals a page from scratch,
//! also when an id is reused by a different object.
//!
//! Memory: about 170 bytes per map and 250 per program (a boxed string of
//! the label text and ~56 bytes of fields): 2 MB at 10 000 maps + 1 000
//! programs, held by the server between collections (docs/performance.md).
use std::fmt::Write;

use super::labels::Escaped;
use crate::inventory::{Inventory, Map, Program};

/// Label text per program and map, in the order of the last inventory.
#[derive(Default)]
pub struct Fragments {
    programs: Vec<ProgFragment>,
    maps: Vec<MapFragment>,
    /// Fragments reused / made by the last [`Fragments::refresh`], which the
    /// tests check; nothing else reads them.
    #[cfg(test)]
    reused: usize,
    #[cfg(test)]
    made: usize,
}

/// A range of a fragment's text.
#[derive(Clone, Copy)]
struct Span(u32, u32);

impl Span {
    fn of<'a>(&self, text: &'a str) -> &'a str {
        &text[self.0 as usize..self.1 as usize]
    }
}

/// `id="..",name="..",type=".."` (the object labels without `self`), then
/// `,tag="..",attach_to="..",gpl=".."` (the rest of `bpf_prog_info`'s).
pub(super) struct ProgFragment {
    id: u32,
    is_self: bool,
    gpl: bool,
    text: Box<str>,
    name: Span,
    prog_type: Span,
    tag: Span,
    attach_to: Option<Span>,
    split: u32,
}

/// `id="..",name="..",type=".."`, then `,key_size="..",value_size="..",flags=".."`.
pub(super) struct MapFragment {
    id: u32,
    is_self: bool,
    key_size: u32,
    value_size: u32,
    flags: u32,
    text: Box<str>,
    name: Span,
    map_type: Span,
    split: u32,
}

/// The labels of one object's series, borrowed from its fragment.
pub(super) struct Labels<'a> {
    /// `id`, `name`, `type`.
    pub object: &'a str,
    /// The `_info` series' labels after those, before `self`.
    pub info: &'a str,
    pub is_self: bool,
}

impl<'a> Labels<'a> {
    fn split(text: &'a str, at: u32, is_self: bool) -> Self {
        let (object, info) = text.split_at(at as usize);
        Self {
            object,
            info,
            is_self,
        }
    }
}

impl Fragments {
    /// Brings the fragments in line with `inventory`: reused where equal,
    /// made where new or changed, dropped where gone. Lists sorted by id
    /// (as collected) are matched in one merge; others are made afresh.
    pub fn refresh(&mut self, inventory: &Inventory) {
        let (mut reused, mut made) = (0, 0);
        self.programs = merge(
            std::mem::take(&mut self.programs),
            &inventory.programs,
            |p| p.id,
            |f| f.id,
            ProgFragment::matches,
            ProgFragment::new,
            (&mut reused, &mut made),
        );
        self.maps = merge(
            std::mem::take(&mut self.maps),
            &inventory.maps,
            |m| m.id,
            |f| f.id,
            MapFragment::matches,
            MapFragment::new,
            (&mut reused, &mut made),
        );
        #[cfg(test)]
        {
            (self.reused, self.made) = (reused, made);
        }
    }

    /// Fragments reused and made by the last refresh.
    #[cfg(test)]
    pub fn last_refresh(&self) -> (usize, usize) {
        (self.reused, self.made)
    }

    /// Objects with a fragment.
    pub fn len(&self) -> usize {
        self.programs.len() + self.maps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The fragments of `inventory`'s programs, in order; `refresh` first.
    pub(super) fn programs(&self) -> &[ProgFragment] {
        &self.programs
    }

    pub(super) fn maps(&self) -> &[MapFragment] {
        &self.maps
    }
}

fn merge<T, F>(
    old: Vec<F>,
    objects: &[T],
    id: impl Fn(&T) -> u32,
    fragment_id: impl Fn(&F) -> u32,
    matches: impl Fn(&F, &T) -> bool,
    new: impl Fn(&T) -> F,
    (reused, made): (&mut usize, &mut usize),
) -> Vec<F> {
    let mut fresh = Vec::with_capacity(objects.len());
    let sorted = objects.windows(2).all(|w| id(&w[0]) < id(&w[1]));
    let mut old = if sorted { old } else { Vec::new() }.into_iter().peekable();
    for object in objects {
        let id = id(object);
        while old.next_if(|f| fragment_id(f) < id).is_some() {}
        match old.next_if(|f| fragment_id(f) == id && matches(f, object)) {
            Some(fragment) => {
                *reused += 1;
                fresh.push(fragment);
            }
            None => {
                *made += 1;
                fresh.push(new(object));
            }
        }
    }
    fresh
}

/// Appends `,name="escaped value"` and returns the span of the value.
fn push_label(text: &mut String, name: &str, value: &str) -> Span {
    text.push(',');
    text.push_str(name);
    text.push_str("=\"");
    let start = text.len() as u32;
    let _ = write!(text, "{}", Escaped(value));
    let end = text.len() as u32;
    text.push('"');
    Span(start, end)
}

/// `id="N",name="..",type=".."`: the spans of name and type.
fn object_text(text: &mut String, id: u32, name: &str, object_type: &str) -> (Span, Span) {
    text.push_str("id=\"");
    text.push_str(itoa::Buffer::new().format(id));
    text.push('"');
    let name = push_label(text, "name", name);
    let object_type = push_label(text, "type", object_type);
    (name, object_type)
}

/// Whether `escaped` is `raw` escaped as [`Escaped`] does, without making it.
fn escaped_eq(raw: &str, escaped: &str) -> bool {
    // Most names need no escaping: one comparison of the bytes.
    if raw.len() == escaped.len() {
        return raw == escaped && !raw.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n'));
    }
    let mut rest = escaped.as_bytes();
    for &b in raw.as_bytes() {
        let want: &[u8] = match b {
            b'\\' => b"\\\\",
            b'"' => b"\\\"",
            b'\n' => b"\\n",
            _ => std::slice::from_ref(&b),
        };
        match rest.strip_prefix(want) {
            Some(after) => rest = after,
            None => return false,
        }
    }
    rest.is_empty()
}

impl ProgFragment {
    fn new(p: &Program) -> Self {
        let mut text = String::with_capacity(96 + p.name.len());
        let (name, prog_type) = object_text(&mut text, p.id, &p.name, &p.prog_type);
        let split = text.len() as u32;
        let tag = push_label(&mut text, "tag", &p.tag);
        let attach_to = p
            .attach_to
            .as_deref()
            .map(|a| push_label(&mut text, "attach_to", a));
        text.push_str(if p.gpl_compatible {
            ",gpl=\"true\""
        } else {
            ",gpl=\"false\""
        });
        Self {
            id: p.id,
            is_self: p.is_self,
            gpl: p.gpl_compatible,
            text: text.into_boxed_str(),
            name,
            prog_type,
            tag,
            attach_to,
            split,
        }
    }

    fn matches(&self, p: &Program) -> bool {
        let text = &*self.text;
        self.id == p.id
            && self.is_self == p.is_self
            && self.gpl == p.gpl_compatible
            && escaped_eq(&p.name, self.name.of(text))
            && escaped_eq(&p.prog_type, self.prog_type.of(text))
            && escaped_eq(&p.tag, self.tag.of(text))
            && match (&p.attach_to, self.attach_to) {
                (None, None) => true,
                (Some(a), Some(span)) => escaped_eq(a, span.of(text)),
                _ => false,
            }
    }

    pub(super) fn labels(&self) -> Labels<'_> {
        Labels::split(&self.text, self.split, self.is_self)
    }
}

impl MapFragment {
    fn new(m: &Map) -> Self {
        let mut text = String::with_capacity(96 + m.name.len());
        let (name, map_type) = object_text(&mut text, m.id, &m.name, &m.map_type);
        let split = text.len() as u32;
        let mut buffer = itoa::Buffer::new();
        for (label, value) in [
            (",key_size=\"", m.key_size),
            (",value_size=\"", m.value_size),
            (",flags=\"", m.flags),
        ] {
            text.push_str(label);
            text.push_str(buffer.format(value));
            text.push('"');
        }
        Self {
            id: m.id,
            is_self: m.is_self,
            key_size: m.key_size,
            value_size: m.value_size,
            flags: m.flags,
            text: text.into_boxed_str(),
            name,
            map_type,
            split,
        }
    }

    fn matches(&self, m: &Map) -> bool {
        let text = &*self.text;
        self.id == m.id
            && self.is_self == m.is_self
            && self.key_size == m.key_size
            && self.value_size == m.value_size
            && self.flags == m.flags
            && escaped_eq(&m.name, self.name.of(text))
            && escaped_eq(&m.map_type, self.map_type.of(text))
    }

    pub(super) fn labels(&self) -> Labels<'_> {
        Labels::split(&self.text, self.split, self.is_self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_eq_is_equality_with_the_escaped_text() {
        for raw in ["", "plain", "a\\b\"c\nd", "ünï\"", "\\", "\n\n"] {
            let escaped = Escaped(raw).to_string();
            assert!(escaped_eq(raw, &escaped), "{raw:?}");
            assert!(!escaped_eq(raw, &format!("{escaped}x")), "{raw:?}");
            assert!(!escaped_eq(&format!("{raw}x"), &escaped), "{raw:?}");
        }
        assert!(!escaped_eq("a\"", "a\""));
        assert!(!escaped_eq("a\\", "a\\"));
    }
}
