//! Wycheproof HMAC-SHA256: every case, including 128-bit truncated tags (compared as a prefix).

use kluis_crypto::hazmat::hmac_sha256;
use kluis_crypto::token::constant_time_eq;

use crate::{hex_field, load_json};

#[test]
fn wycheproof_hmac_sha256() {
    let data = load_json("wycheproof/hmac_sha256_test.json");
    let (mut valid, mut invalid) = (0, 0);
    for group in data["testGroups"].as_array().unwrap() {
        let tag_len = usize::try_from(group["tagSize"].as_u64().unwrap() / 8).unwrap();
        for case in group["tests"].as_array().unwrap() {
            let id = &case["tcId"];
            let tag = hex_field(case, "tag");
            assert_eq!(tag.len(), tag_len, "tcId {id}");
            let full = hmac_sha256(&hex_field(case, "key"), &hex_field(case, "msg"));
            let matches = constant_time_eq(&full[..tag_len], &tag);
            match case["result"].as_str().unwrap() {
                "valid" => {
                    assert!(matches, "tcId {id} must verify");
                    valid += 1;
                }
                "invalid" => {
                    assert!(!matches, "tcId {id} must be rejected");
                    invalid += 1;
                }
                other => panic!("tcId {id}: unexpected result {other}"),
            }
        }
    }
    assert_eq!(
        valid + invalid,
        data["numberOfTests"].as_u64().unwrap(),
        "every case must run"
    );
    assert!(valid > 0 && invalid > 0);
}
