//! The committed contract files stay in step with the code.

#[test]
fn committed_schema_matches_the_code() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema/schema.graphql")).unwrap();
    assert!(
        committed == agensium::gql::sdl(),
        "schema/schema.graphql is out of date: run `cargo run -- export-schema > schema/schema.graphql` and review the diff"
    );
}

#[test]
fn docs_list_every_error_code() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/errors.md")).unwrap();
    for code in agensium::error::ErrorCode::ALL {
        assert!(docs.contains(&format!("`{}`", code.as_str())), "docs/errors.md does not list {code}");
    }
}

#[test]
fn readme_documents_every_variable() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for variable in agensium::config::VARIABLES {
        assert!(readme.contains(&format!("`{variable}`")), "README.md does not document {variable}");
    }
}
