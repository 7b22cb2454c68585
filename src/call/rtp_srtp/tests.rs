use super::*;

/// 30 bytes 0x00..0x1d, as base64 (computed independently: `head -c 30 ... | base64`).
const KEY_0_TO_29: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";

#[test]
fn suites_and_keys_are_checked_and_the_key_never_prints() {
    let key = SrtpKey::parse("AES_CM_128_HMAC_SHA1_80", KEY_0_TO_29).unwrap();
    assert_eq!(key.suite, SrtpSuite::AesCm128HmacSha1_80);
    assert_eq!(key.expose_base64(), KEY_0_TO_29);
    assert_eq!(format!("{key:?}"), "SrtpKey(AES_CM_128_HMAC_SHA1_80, ***)");
    assert_eq!(
        SrtpKey::parse("AES_CM_128_HMAC_SHA1_32", KEY_0_TO_29).unwrap().suite,
        SrtpSuite::AesCm128HmacSha1_32
    );
    assert!(matches!(
        SrtpKey::parse("AEAD_AES_256_GCM", KEY_0_TO_29),
        Err(SrtpKeyError::Suite(_))
    ));
    assert!(matches!(
        SrtpKey::parse("AES_CM_128_HMAC_SHA1_80", "not base64!"),
        Err(SrtpKeyError::Key(_))
    ));
    // 29 bytes: one short.
    assert!(matches!(
        SrtpKey::parse("AES_CM_128_HMAC_SHA1_80", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw="),
        Err(SrtpKeyError::Key(_))
    ));
    let fresh = SrtpKey::generate(SrtpSuite::AesCm128HmacSha1_80);
    assert_eq!(fresh.expose_base64().len(), KEY_0_TO_29.len());
    assert_ne!(
        fresh.expose_base64(),
        SrtpKey::generate(SrtpSuite::AesCm128HmacSha1_80).expose_base64()
    );
}
