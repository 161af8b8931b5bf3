//! The Debian packaging metadata (`[package.metadata.deb]`, read by cargo-deb) names files
//! that exist: a renamed unit, configuration or document would otherwise only show when
//! someone builds the package.

use std::path::Path;

#[test]
fn deb_metadata_names_existing_files() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(crate_dir.join("Cargo.toml")).expect("Cargo.toml");
    let doc: toml_edit::DocumentMut = text.parse().expect("TOML");
    let deb = &doc["package"]["metadata"]["deb"];
    assert_eq!(deb["name"].as_str(), Some("sipwire"));
    let assets = deb["assets"].as_array().expect("assets");
    let mut dests = Vec::new();
    for a in assets {
        let a = a.as_array().expect("[source, dest, mode]");
        let src = a.get(0).and_then(|v| v.as_str()).expect("source");
        let dest = a.get(1).and_then(|v| v.as_str()).expect("dest");
        dests.push(dest.to_owned());
        if !src.starts_with("target/release/") {
            assert!(crate_dir.join(src).is_file(), "asset {src} is missing");
        }
    }
    for want in ["usr/bin/sipwire", "etc/sipwire/sipwire.toml"] {
        assert!(dests.iter().any(|d| d == want), "{want} not packaged");
    }
    let units = deb["systemd-units"]["unit-scripts"]
        .as_str()
        .expect("systemd-units.unit-scripts");
    let units = crate_dir.join(units);
    // The unit installed is the one documented and verified (docs/sipwire.service).
    assert_eq!(
        std::fs::read_to_string(units.join("sipwire.service")).expect("unit"),
        include_str!("../../docs/sipwire.service")
    );
    let sysusers = std::fs::read_to_string(units.join("sipwire.sysusers")).expect("sysusers");
    assert!(
        sysusers.lines().any(|l| l.starts_with("u sipwire ")),
        "{sysusers}"
    );
    // The packaged configuration is the embedded default.
    assert_eq!(
        std::fs::read_to_string(crate_dir.join("src/default.toml")).expect("default"),
        sipwire_gateway::config::EMBEDDED_DEFAULT
    );
}
