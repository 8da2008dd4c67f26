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
