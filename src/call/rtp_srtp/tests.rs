use super::*;

/// 30 bytes 0x00..0x1d, as base64 (computed independently: `head -c 30 ... | base64`).
const KEY_0_TO_29: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";
/// 46, 28 and 44 bytes counting from 0 (`python3 -c 'import base64;print(base64.b64encode(bytes(range(46))))'`).
const KEY_0_TO_45: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLQ==";
const KEY_0_TO_27: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==";
const KEY_0_TO_43: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKis=";

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
        SrtpKey::parse("F8_128_HMAC_SHA1_80", KEY_0_TO_29),
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

/// AES-256 counter mode (RFC 6188) takes 46 bytes, GCM (RFC 7714) 28 or 44; each suite refuses the others'
/// lengths, and a fresh key has its suite's length.
#[test]
fn each_suite_takes_its_own_key_length() {
    let cases = [
        (
            "AES_256_CM_HMAC_SHA1_80",
            KEY_0_TO_45,
            SrtpSuite::AesCm256HmacSha1_80,
            46,
        ),
        (
            "AES_256_CM_HMAC_SHA1_32",
            KEY_0_TO_45,
            SrtpSuite::AesCm256HmacSha1_32,
            46,
        ),
        ("AEAD_AES_128_GCM", KEY_0_TO_27, SrtpSuite::AeadAes128Gcm, 28),
        ("AEAD_AES_256_GCM", KEY_0_TO_43, SrtpSuite::AeadAes256Gcm, 44),
    ];
    for (name, key, suite, bytes) in cases {
        assert_eq!(SrtpKey::parse(name, key).unwrap().suite, suite, "{name}");
        for other in [KEY_0_TO_29, KEY_0_TO_45, KEY_0_TO_27, KEY_0_TO_43]
            .into_iter()
            .filter(|k| *k != key)
        {
            assert!(
                matches!(SrtpKey::parse(name, other), Err(SrtpKeyError::Key(_))),
                "{name} took a key of another length"
            );
        }
        let fresh = base64::engine::general_purpose::STANDARD
            .decode(SrtpKey::generate(suite).expose_base64())
            .unwrap();
        assert_eq!(fresh.len(), bytes, "{name}");
    }
}
