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
