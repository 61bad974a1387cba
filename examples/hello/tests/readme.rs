//! The README's "Use it" shows `examples/helloworld-server.rs` and
//! `examples/helloworld-client.rs` (which `cargo test` compiles): this keeps the README's
//! copies equal to the files.

#[test]
fn the_readme_shows_the_helloworld_examples_as_they_are() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{dir}/../../README.md")).expect("README.md");
    for file in [
        "examples/helloworld-server.rs",
        "examples/helloworld-client.rs",
    ] {
        let code = std::fs::read_to_string(format!("{dir}/{file}")).expect(file);
        assert!(
            readme.contains(&format!("```rust\n{code}```\n")),
            "README.md should show examples/hello/{file} as it is, in a ```rust block"
        );
    }
}
