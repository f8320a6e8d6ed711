//! Format compatibility of `<data-dir>/tls/` (docs/format.md, "TLS certificate and key"): the
//! committed fixture `tests/fixtures/format/tls/` holds a self-signed certificate and key as
//! kinesin generates them; the current code must reuse them as they are. Regenerate with
//! `cargo test -p kinesin-server --test format_tls -- --ignored generate_tls`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

use std::path::{Path, PathBuf};

use kinesin_server::tls::{server_config, CertSource, SELF_SIGNED_CERT_FILE, SELF_SIGNED_KEY_FILE};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/format/tls")
}

#[test]
#[ignore = "writes the committed fixture tests/fixtures/format/tls; run by hand after a format change"]
fn generate_tls() {
    let dir = fixture();
    let _ = std::fs::remove_dir_all(&dir);
    let (_, source) = server_config(None, &dir).unwrap();
    assert!(matches!(source, CertSource::Generated { .. }));
}

#[test]
fn the_tls_fixture_is_reused_as_it_is() {
    let copy = tempfile::tempdir().unwrap();
    let tls = copy.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    for name in [SELF_SIGNED_CERT_FILE, SELF_SIGNED_KEY_FILE] {
        std::fs::copy(fixture().join(name), tls.join(name)).unwrap();
    }
    let before = std::fs::read(tls.join(SELF_SIGNED_CERT_FILE)).unwrap();
    let (config, source) = server_config(None, &tls).unwrap();
    assert_eq!(source, CertSource::Reused { cert: tls.join(SELF_SIGNED_CERT_FILE) });
    assert_eq!(config.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    assert_eq!(
        std::fs::read(tls.join(SELF_SIGNED_CERT_FILE)).unwrap(),
        before,
        "the certificate was replaced"
    );
    let pem = String::from_utf8(before).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let key = std::fs::read_to_string(tls.join(SELF_SIGNED_KEY_FILE)).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8 PEM expected: {key}");
}

#[test]
fn a_damaged_tls_file_is_refused_naming_it() {
    let copy = tempfile::tempdir().unwrap();
    let tls = copy.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    std::fs::copy(fixture().join(SELF_SIGNED_CERT_FILE), tls.join(SELF_SIGNED_CERT_FILE)).unwrap();
    let key = std::fs::read_to_string(fixture().join(SELF_SIGNED_KEY_FILE)).unwrap();
    // Cut inside the base64: not a key any more.
    std::fs::write(tls.join(SELF_SIGNED_KEY_FILE), &key[..key.len() / 2]).unwrap();
    let e = match server_config(None, &tls) {
        Ok(_) => panic!("a damaged key must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains(&tls.join(SELF_SIGNED_KEY_FILE).display().to_string()), "{e}");
}
