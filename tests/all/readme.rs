//! The README's Rust example is the compiled `examples/quickstart.rs`, word for word.

#[test]
fn the_readme_example_is_the_quickstart_example() {
    let readme = include_str!("../../README.rst");
    let example = include_str!("../../examples/quickstart.rs");

    let marker = ".. code-block:: rust\n\n";
    let start = readme
        .find(marker)
        .expect("README.rst has a rust code block")
        + marker.len();
    let block: Vec<&str> = readme[start..]
        .lines()
        .take_while(|line| line.is_empty() || line.starts_with("    "))
        .collect();
    let block = block
        .iter()
        .map(|line| line.strip_prefix("    ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n");

    assert_eq!(
        block.trim_end(),
        example.trim_end(),
        "README.rst's first rust block and examples/quickstart.rs differ: keep them identical"
    );
}

/// The README's Rust snippets, each as the file shows it (indented by four spaces).
fn rust_blocks(readme: &str) -> Vec<String> {
    readme
        .split(".. code-block:: rust\n\n")
        .skip(1)
        .map(|block| {
            block
                .lines()
                .take_while(|line| line.is_empty() || line.starts_with("    "))
                .collect::<Vec<_>>()
                .join("\n")
                .trim_end()
                .to_owned()
        })
        .collect()
}

#[test]
fn every_other_rust_snippet_of_the_readme_is_compiled_word_for_word() {
    let readme = include_str!("../../README.rst");
    let compiled = include_str!("readme_snippets.rs");

    let blocks = rust_blocks(readme);
    assert!(blocks.len() > 5, "the README's snippets were not found");
    for block in &blocks[1..] {
        assert!(
            compiled.contains(&format!("{block}\n    Ok(())\n}}")),
            "this README.rst snippet is not in tests/all/readme_snippets.rs as it stands; \
             copy it there, in a function of its own:\n{block}"
        );
    }
}

/// README.md, which crates.io shows, is README.rst in Markdown: made by [`markdown_of`], and
/// compared here. `ALF_WRITE_README_MD=1 cargo test --test all readme` writes it anew.
#[test]
fn readme_md_is_readme_rst_in_markdown() {
    let markdown = markdown_of(include_str!("../../README.rst"));
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    if std::env::var_os("ALF_WRITE_README_MD").is_some() {
        std::fs::write(path, &markdown).unwrap();
    }
    let kept = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        kept == markdown,
        "README.md is not README.rst in Markdown: run \
         `ALF_WRITE_README_MD=1 cargo test --test all readme` and commit README.md"
    );
}

/// The reStructuredText README.rst uses, in Markdown: titles, code and literal blocks, simple
/// tables, an image, definition lists, inline literals and links.
fn markdown_of(rst: &str) -> String {
    let lines: Vec<&str> = rst.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let next = lines.get(i + 1).copied().unwrap_or_default();
        let indent = line.len() - line.trim_start().len();
        if let Some(level) = title_level(line, next) {
            out.push(format!("{} {}", "#".repeat(level), inline(line)));
            i += 2;
        } else if let Some(language) = line.strip_prefix(".. code-block:: ") {
            let (block, end) = indented_block(&lines, i + 1, 0);
            out.push(format!("```{language}"));
            out.extend(block);
            out.push("```".into());
            i = end;
        } else if let Some(path) = line.strip_prefix(".. image:: ") {
            let mut alt = Vec::new();
            i += 1;
            while i < lines.len() && lines[i].starts_with("   ") {
                alt.push(lines[i].trim().trim_start_matches(":alt:").trim());
                i += 1;
            }
            out.push(format!("![{}]({path})", alt.join(" ")));
        } else if line.starts_with("====") && line.contains("  ") {
            i = table(&lines, i, &mut out);
        } else if line.trim_end().ends_with("::") {
            let text = line.trim_end().trim_end_matches("::").trim_end();
            if !text.trim().is_empty() {
                out.push(format!("{}:", inline(text)));
            }
            let (block, end) = indented_block(&lines, i + 1, indent);
            let pad = " ".repeat(indent);
            out.push(format!("{pad}```text"));
            out.extend(block.into_iter().map(|l| format!("{pad}{l}")));
            out.push(format!("{pad}```"));
            i = end;
        } else if indent == 0
            && !line.is_empty()
            && next.starts_with("    ")
            && !next.trim().is_empty()
        {
            // A definition list's term and its definition.
            out.push(format!("- {}:", inline(line)));
            i += 1;
            while i < lines.len() && lines[i].starts_with("    ") {
                out.push(format!("  {}", inline(lines[i].trim())));
                i += 1;
            }
        } else {
            out.push(inline(line));
            i += 1;
        }
    }
    let mut markdown = out.join("\n");
    markdown.push('\n');
    markdown
}

/// The heading level of `line` when `next` underlines it.
fn title_level(line: &str, next: &str) -> Option<usize> {
    let marker = next.chars().next()?;
    let underline = next.len() >= 3 && next.chars().all(|c| c == marker);
    let level = ['=', '-', '~'].iter().position(|&m| m == marker)? + 1;
    (underline && !line.trim().is_empty() && !line.starts_with(' ')).then_some(level)
}

/// The block indented deeper than `indent` after `start` (blank lines first), dedented; and
/// where it ends.
fn indented_block(lines: &[&str], start: usize, indent: usize) -> (Vec<String>, usize) {
    let mut i = start;
    while i < lines.len() && lines[i].trim().is_empty() {
        i += 1;
    }
    let body_indent = lines.get(i).map_or(0, |l| l.len() - l.trim_start().len());
    let mut block = Vec::new();
    while i < lines.len() {
        let l = lines[i];
        let deeper = l.len() - l.trim_start().len() > indent;
        if !l.trim().is_empty() && !deeper {
            break;
        }
        block.push(l.get(body_indent..).unwrap_or("").to_owned());
        i += 1;
    }
    // Blank lines after the block separate it from what follows: they are not its own.
    while block.last().is_some_and(|l| l.is_empty()) {
        block.pop();
        i -= 1;
    }
    (block, i)
}

/// A simple table (`====  ====` borders) as a Markdown table; where it ends.
fn table(lines: &[&str], start: usize, out: &mut Vec<String>) -> usize {
    let border = lines[start];
    let column_starts: Vec<usize> = border
        .char_indices()
        .filter(|&(at, c)| c == '=' && (at == 0 || border.as_bytes()[at - 1] == b' '))
        .map(|(at, _)| at)
        .collect();
    let cells = |line: &str| -> Vec<String> {
        column_starts
            .iter()
            .enumerate()
            .map(|(n, &from)| {
                let to = column_starts.get(n + 1).copied().unwrap_or(line.len());
                line.get(from.min(line.len())..to.min(line.len()))
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            })
            .collect()
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut i = start + 1;
    let mut borders_seen = 1;
    while i < lines.len() && borders_seen < 3 {
        let line = lines[i];
        if line.starts_with("====") {
            borders_seen += 1;
        } else if line.starts_with(' ') && !rows.is_empty() {
            // A row's continuation: more words for its cells.
            let last = rows.len() - 1;
            for (cell, more) in rows[last].iter_mut().zip(cells(line)) {
                if !more.is_empty() {
                    cell.push(' ');
                    cell.push_str(&more);
                }
            }
        } else if !line.trim().is_empty() {
            rows.push(cells(line));
        }
        i += 1;
    }
    for (n, row) in rows.iter().enumerate() {
        let row: Vec<String> = row.iter().map(|cell| inline(cell)).collect();
        out.push(format!("| {} |", row.join(" | ")));
        if n == 0 {
            out.push(format!("|{}", "---|".repeat(row.len())));
        }
    }
    i
}

/// Inline markup: ``literal``, `text <url>`_, `Section`_.
fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("``")
            && let Some(end) = after.find("``")
        {
            out.push('`');
            out.push_str(&after[..end]);
            out.push('`');
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix('`')
            && let Some(end) = after.find("`_")
        {
            let reference = &after[..end];
            match reference.rsplit_once(" <") {
                Some((label, url)) => {
                    out.push_str(&format!("[{label}]({})", url.trim_end_matches('>')))
                }
                None => {
                    let anchor = reference.to_lowercase().replace(' ', "-");
                    out.push_str(&format!("[{reference}](#{anchor})"));
                }
            }
            rest = &after[end + 2..];
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}
