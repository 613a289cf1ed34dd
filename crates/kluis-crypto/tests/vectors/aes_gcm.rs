//! Wycheproof AES-GCM: every case with a 256-bit key and 96-bit nonce.

use kluis_crypto::hazmat::{aes256gcm_open_with_nonce, aes256gcm_seal_with_nonce};

use crate::{hex_field, load_json};

#[test]
fn wycheproof_aes256_gcm_96bit_nonce() {
    let data = load_json("wycheproof/aes_gcm_test.json");
    let (mut valid, mut invalid) = (0, 0);
    for group in data["testGroups"].as_array().unwrap() {
        if group["keySize"] != 256 || group["ivSize"] != 96 {
            continue;
        }
        assert_eq!(group["tagSize"], 128, "only 128-bit tags are supported");
        for case in group["tests"].as_array().unwrap() {
            let id = &case["tcId"];
            let key: [u8; 32] = hex_field(case, "key").try_into().unwrap();
            let nonce: [u8; 12] = hex_field(case, "iv").try_into().unwrap();
            let aad = hex_field(case, "aad");
            let msg = hex_field(case, "msg");
            let mut ct = hex_field(case, "ct");
            ct.extend(hex_field(case, "tag"));
            let opened = aes256gcm_open_with_nonce(&key, &nonce, &aad, &ct);
            match case["result"].as_str().unwrap() {
                "valid" => {
                    assert_eq!(opened.unwrap(), msg, "tcId {id} decrypt");
                    let sealed = aes256gcm_seal_with_nonce(&key, &nonce, &aad, &msg).unwrap();
                    assert_eq!(sealed, ct, "tcId {id} encrypt");
                    valid += 1;
                }
                "invalid" => {
                    assert!(opened.is_err(), "tcId {id} must be rejected");
                    invalid += 1;
                }
                other => panic!("tcId {id}: unexpected result {other}"),
            }
        }
    }
    // Guard against silently skipping the file's contents.
    assert_eq!(valid + invalid, 66, "valid {valid}, invalid {invalid}");
    assert!(invalid > 0);
}
