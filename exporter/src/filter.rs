//! Name filters (`--include-name`, `--exclude-name`): which programs and maps
//! the exporter reports at all. Applied inside the collection, so every output
//! and the map-memory cache see the same objects. Links have no name: a link
//! goes with its program.
use std::collections::HashSet;

use regex::Regex;

use crate::inventory::{Link, Map, Program};

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// `reason` is one line (regex's own message draws the pattern over several).
    #[error("invalid {flag} regular expression: {reason}")]
    Regex { flag: &'static str, reason: String },
}

/// Keeps an object when its name matches `include` (if set) and does not
/// match `exclude` (if set). Both are anchored: they match the whole name.
#[derive(Clone, Debug, Default)]
pub struct NameFilter {
    include: Option<Regex>,
    exclude: Option<Regex>,
}

impl NameFilter {
    pub fn new(include: Option<&str>, exclude: Option<&str>) -> Result<Self, FilterError> {
        Ok(Self {
            include: include.map(|r| anchored("--include-name", r)).transpose()?,
            exclude: exclude.map(|r| anchored("--exclude-name", r)).transpose()?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.include.is_none() && self.exclude.is_none()
    }

    pub fn keeps(&self, name: &str) -> bool {
        self.include.as_ref().is_none_or(|r| r.is_match(name))
            && !self.exclude.as_ref().is_some_and(|r| r.is_match(name))
    }

    /// Drops filtered programs and maps, and the links of dropped programs.
    pub fn retain(&self, programs: &mut Vec<Program>, maps: &mut Vec<Map>, links: &mut Vec<Link>) {
        if self.is_empty() {
            return;
        }
        let dropped: HashSet<u32> = programs
            .iter()
            .filter(|p| !self.keeps(&p.name))
            .map(|p| p.id)
            .collect();
        programs.retain(|p| !dropped.contains(&p.id));
        maps.retain(|m| self.keeps(&m.name));
        links.retain(|l| !dropped.contains(&l.prog_id));
    }
}

fn anchored(flag: &'static str, pattern: &str) -> Result<Regex, FilterError> {
    compile(pattern).map_err(|reason| FilterError::Regex { flag, reason })
}

/// Why `pattern` is not a usable name regex, in one line; for the flags'
/// parser, so a bad pattern is refused like any other bad flag value.
pub fn check_pattern(pattern: &str) -> Result<String, String> {
    compile(pattern).map(|_| pattern.to_owned())
}

fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|error| match error {
        // The syntax message is a drawing of the pattern ending in "error: <reason>".
        regex::Error::Syntax(text) => match text.rsplit_once("error: ") {
            Some((_, reason)) => reason.trim().to_owned(),
            None => text.replace('\n', " "),
        },
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_and_exclude_match_whole_names() {
        let f = NameFilter::new(Some("fixture_.*|cilium"), Some(".*_lru")).unwrap();
        assert!(f.keeps("fixture_hash"));
        assert!(f.keeps("cilium"));
        assert!(!f.keeps("cilium_calls"), "include is anchored");
        assert!(!f.keeps("fixture_lru"), "exclude wins");
        assert!(!f.keeps("dump_maps"));
        assert!(NameFilter::default().keeps("anything"));
    }

    #[test]
    fn retain_drops_objects_and_the_links_of_dropped_programs() {
        let mut inv = crate::testing::sample_inventory();
        let f = NameFilter::new(None, Some("dump_.*|events")).unwrap();
        f.retain(&mut inv.programs, &mut inv.maps, &mut inv.links);
        let ids = |v: Vec<u32>| v;
        assert_eq!(ids(inv.programs.iter().map(|p| p.id).collect()), [7]);
        assert_eq!(ids(inv.maps.iter().map(|m| m.id).collect()), [11, 13]);
        // Link 4 attached the dropped dump_maps (21); link 3 stays with program 7.
        assert_eq!(ids(inv.links.iter().map(|l| l.id).collect()), [3]);
    }

    #[test]
    fn bad_regex_is_one_line_naming_the_flag() {
        let err = NameFilter::new(None, Some("(")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid --exclude-name regular expression: unclosed group"
        );
        assert_eq!(
            check_pattern("[z-a]").unwrap_err(),
            "invalid character class range, the start must be <= the end"
        );
        let too_big = check_pattern("a{1000}{1000}").unwrap_err();
        assert!(!too_big.contains('\n'), "{too_big}");
        assert!(too_big.contains("size limit"), "{too_big}");
        assert_eq!(check_pattern("fixture_.*").unwrap(), "fixture_.*");
    }
}
