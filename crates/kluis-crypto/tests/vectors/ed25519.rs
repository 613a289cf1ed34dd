//! Wycheproof Ed25519: every case, through the verification path checkpoints use.

use kluis_crypto::hazmat::ed25519_verify;

use crate::{hex_field, load_json};

#[test]
fn wycheproof_ed25519() {
    let data = load_json("wycheproof/ed25519_test.json");
    let (mut valid, mut invalid) = (0, 0);
    for group in data["testGroups"].as_array().unwrap() {
        let pk: [u8; 32] = hex_field(&group["publicKey"], "pk").try_into().unwrap();
        for case in group["tests"].as_array().unwrap() {
            let id = &case["tcId"];
            let ok = ed25519_verify(&pk, &hex_field(case, "msg"), &hex_field(case, "sig")).is_ok();
            match case["result"].as_str().unwrap() {
                "valid" => {
                    assert!(ok, "tcId {id} must verify");
                    valid += 1;
                }
                "invalid" => {
                    assert!(!ok, "tcId {id} must be rejected");
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
