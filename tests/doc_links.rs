//! Relative links in the README, SECURITY.md and `docs/*.md` point at files that exist and, with
//! an `#anchor`, at a heading of that file (GitHub's anchors). The README is short and sends the
//! reader to `docs/` for the details, so a page or heading renamed without its links would leave
//! a user at a dead end; this catches it at `cargo test`, with no network (external links are
//! not checked).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// GitHub's heading anchor: lower case, punctuation dropped except `-` and `_`, each space a `-`.
/// Letters and digits of any script are kept (`Für` stays `für`).
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// The lines of a markdown file outside fenced code blocks.
fn prose_lines(text: &str) -> Vec<&str> {
    let mut in_fence = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if !in_fence {
            lines.push(line);
        }
    }
    lines
}

/// The anchors GitHub gives a file's headings; a repeated heading gets `-1`, `-2`, ...
fn anchors(text: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    for line in prose_lines(text) {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let heading = heading.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let base = slug(heading);
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// A line with its code spans removed: a `[x](y)` written as code is not a link.
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let after = &rest[start + ticks..];
        let fence = "`".repeat(ticks);
        match after.find(&fence) {
            Some(end) => rest = &after[end + ticks..],
            None => {
                // An unclosed backtick is a literal one.
                out.push_str(&rest[start..start + ticks]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The targets of the inline links and images of a markdown text.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose_lines(text) {
        let line = without_code_spans(line);
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after
                .find(|c: char| c == ')' || c.is_whitespace())
                .unwrap_or(after.len());
            targets.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    targets
}

/// Every broken relative link of `file`, as `file: target (why)`.
fn broken_links(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).expect("read a markdown file");
    let dir = file.parent().expect("a file has a directory");
    let mut broken = Vec::new();
    for target in link_targets(&text) {
        let scheme = target
            .find(':')
            .is_some_and(|colon| !target[..colon].contains(['/', '#']));
        if target.is_empty() || scheme {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (target.as_str(), None),
        };
        let linked = if path.is_empty() {
            file.to_path_buf()
        } else {
            dir.join(path)
        };
        if !linked.exists() {
            broken.push(format!("{}: {target} (no such file)", file.display()));
            continue;
        }
        if let Some(anchor) = anchor {
            let linked_text = std::fs::read_to_string(&linked).unwrap_or_default();
            if !anchors(&linked_text).contains(anchor) {
                broken.push(format!(
                    "{}: {target} (no heading with that anchor)",
                    file.display()
                ));
            }
        }
    }
    broken
}

fn documentation_files() -> Vec<PathBuf> {
    let mut files = vec![repo().join("README.md"), repo().join("SECURITY.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .map(|entry| entry.expect("a docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

#[test]
fn every_relative_link_in_the_readme_and_docs_reaches_an_existing_file_and_heading() {
    let files = documentation_files();
    assert!(files.len() > 3, "docs/ has its pages: {files:?}");
    let broken: Vec<String> = files.iter().flat_map(|f| broken_links(f)).collect();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_links_every_docs_page() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let linked: HashSet<String> = link_targets(&readme)
        .into_iter()
        .map(|t| t.split('#').next().unwrap_or_default().to_string())
        .collect();
    for page in documentation_files().iter().skip(2) {
        let name = page.file_name().and_then(|n| n.to_str()).expect("a name");
        if name == "README.md" {
            continue; // docs/README.md describes the screenshots
        }
        assert!(
            linked.contains(&format!("docs/{name}")),
            "README.md does not link docs/{name}"
        );
    }
}

#[test]
fn anchors_follow_github_rules_for_punctuation_code_and_repeated_headings() {
    let text = "# Several replicas: PostgreSQL\n## Custom UI: your own form\n\
                ### `X-Profile-Jwt` and the JWT\n## Results (one run)\n## Für Sie\n\
                ## Keys\n## Keys\n```sh\n# not a heading\n```\n#not a heading\n";
    let found = anchors(text);
    let expected: HashSet<String> = [
        "several-replicas-postgresql",
        "custom-ui-your-own-form",
        "x-profile-jwt-and-the-jwt",
        "results-one-run",
        "für-sie",
        "keys",
        "keys-1",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(found, expected);
}

#[test]
fn a_missing_file_and_a_missing_heading_are_both_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("other.md"), "# Other\n## Present\n").expect("write");
    let page = dir.path().join("page.md");
    std::fs::write(
        &page,
        "# Page\n[ok](other.md#present) [gone](missing.md) [bad](other.md#absent)\n\
         [self](#page) [self bad](#nowhere) [web](https://example.invalid/x#y)\n\
         `[code](not-a-link.md)`\n```\n[fenced](not-a-link-either.md)\n```\n",
    )
    .expect("write");
    let broken = broken_links(&page);
    assert_eq!(broken.len(), 3, "{broken:?}");
    assert!(
        broken[0].ends_with("missing.md (no such file)"),
        "{broken:?}"
    );
    assert!(
        broken[1].ends_with("other.md#absent (no heading with that anchor)"),
        "{broken:?}"
    );
    assert!(
        broken[2].ends_with("#nowhere (no heading with that anchor)"),
        "{broken:?}"
    );
}

/// Paths of repository files named in prose or code spans (`src/proxy/edge.rs`,
/// `tests/login.rs`, `tests/bench/run.sh`): each must exist, so a file moved by a refactor
/// cannot leave the documentation pointing at nothing. Text inside code blocks counts too.
fn named_files(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices(['s', 't', 'e', 'd']) {
        let rest = &text[at..];
        let starts = ["src/", "tests/", "examples/", "templates/", "docs/"];
        if !starts.iter().any(|s| rest.starts_with(s)) {
            continue;
        }
        // Only where a path begins: not inside a longer word or path.
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || matches!(c, '/' | '_' | '-' | '.')) {
            continue;
        }
        let path: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '/' | '_' | '-' | '.'))
            .collect();
        let path = path.trim_end_matches('.');
        let has_extension = path
            .rsplit('/')
            .next()
            .is_some_and(|name| name.contains('.') && !name.ends_with('.'));
        if has_extension && !path.contains('*') {
            found.push(path.to_string());
        }
    }
    found
}

#[test]
fn every_repository_file_the_docs_name_exists() {
    let mut missing = Vec::new();
    for file in documentation_files() {
        let text = std::fs::read_to_string(&file).expect("readable");
        for path in named_files(&text) {
            if !repo().join(&path).exists() {
                missing.push(format!("{}: {path}", file.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "files named in the docs that do not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn named_files_finds_paths_and_skips_globs_folders_and_words() {
    let found = named_files(
        "see `src/proxy/edge.rs`, tests/login.rs. and docs/ or src/store/ \
         xsrc/a.rs tests/*.rs (templates/base.html)",
    );
    assert_eq!(
        found,
        vec!["src/proxy/edge.rs", "tests/login.rs", "templates/base.html"]
    );
}
