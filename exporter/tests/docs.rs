//! The documentation's shape: README stays a short entry that links every
//! page of docs/, every relative link of the Markdown files resolves (file and
//! `#anchor`), and README's usage synopsis names every flag `--help` lists.
use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

const README_MAX_LINES: usize = 250;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the exporter crate sits in the workspace")
        .to_path_buf()
}

/// The Markdown files the project writes (not those of downloaded packages).
fn markdown_files() -> Vec<PathBuf> {
    let root = root();
    let mut files = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    for dir in ["docs", "deploy", "dashboards", "bench"] {
        collect_markdown(&root.join(dir), &mut files);
    }
    files
}

fn collect_markdown(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_markdown(&path, files);
        } else if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
}

/// Link targets of `[text](target)` outside code blocks and code spans.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_block = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            continue;
        }
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            targets.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    targets
}

/// GitHub's anchor of a heading: lower case, punctuation but `-` and `_` dropped, spaces to `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut in_block = false;
    let mut found = BTreeSet::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
        } else if !in_block && line.starts_with('#') {
            found.insert(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

#[test]
fn every_relative_link_resolves() {
    let mut broken = Vec::new();
    for file in markdown_files() {
        let text = fs::read_to_string(&file).unwrap();
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, fragment) = target.split_once('#').unwrap_or((&target, ""));
            let linked = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !linked.exists() {
                broken.push(format!("{}: {target} (no such file)", file.display()));
            } else if !fragment.is_empty() && linked.extension().is_some_and(|e| e == "md") {
                let headings = anchors(&fs::read_to_string(&linked).unwrap());
                if !headings.contains(fragment) {
                    broken.push(format!("{}: {target} (no such heading)", file.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn readme_is_short_and_links_every_docs_page() {
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines: keep it the five-minute entry (at most {README_MAX_LINES}) and move detail to docs/"
    );
    let linked: BTreeSet<String> = link_targets(&readme)
        .into_iter()
        .map(|t| t.split('#').next().unwrap_or_default().to_owned())
        .collect();
    for entry in fs::read_dir(root().join("docs")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".md") {
            assert!(
                linked.contains(&format!("docs/{name}")),
                "README.md does not link docs/{name}"
            );
        }
    }
    assert!(
        readme.contains("./dev test"),
        "README.md must give the test command CI runs (.ci/run: ./dev test)"
    );
}

/// Long flags of one `--help` page (`--help` and `--version` aside).
fn help_flags(args: &[&str]) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_bpf-inventory-exporter"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?} --help failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--"))
        .map(|l| l.split([' ', ',', '<']).next().unwrap_or_default())
        .filter(|flag| !["help", "version"].contains(flag))
        .map(|flag| format!("--{flag}"))
        .collect()
}

/// The subcommands `--help` lists (`help` aside).
fn subcommands() -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_bpf-inventory-exporter"))
        .arg("--help")
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn readme_synopsis_names_every_flag() {
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    let usage = readme
        .split("## Usage")
        .nth(1)
        .and_then(|s| s.split("```").nth(1))
        .expect("README.md has a usage synopsis in a code block under ## Usage");
    let subcommands = subcommands();
    assert!(subcommands.len() >= 7, "{subcommands:?}");
    for subcommand in &subcommands {
        let subcommand = subcommand.as_str();
        let line = usage
            .lines()
            .find(|l| {
                l.starts_with(&format!("bpf-inventory-exporter {subcommand}"))
                    || (subcommand == "serve" && l.starts_with("bpf-inventory-exporter [serve]"))
            })
            .unwrap_or_else(|| panic!("the synopsis has no line for {subcommand}"));
        // serve's flags continue on the indented lines that follow.
        let block: String = usage
            .lines()
            .skip_while(|l| *l != line)
            .enumerate()
            .take_while(|(i, l)| *i == 0 || l.starts_with(' '))
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        let global = usage
            .lines()
            .find(|l| l.starts_with("every subcommand:"))
            .expect("a line for the flags every subcommand takes");
        for flag in help_flags(&[subcommand]) {
            let named = |text: &str| {
                text.split(|c: char| !(c.is_alphanumeric() || "-.".contains(c)))
                    .any(|word| word == flag)
            };
            assert!(
                named(&block) || named(global),
                "README's synopsis of {subcommand} lacks {flag}"
            );
        }
    }
}
