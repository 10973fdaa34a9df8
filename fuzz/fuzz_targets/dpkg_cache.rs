//! `dpkg_verify`'s verification cache as the agent reads it back from the
//! state directory (`vigil_rules::checks::file_integrity::cache`: the format
//! is decoded in rules, the agent only reads and writes the file). The input is the file
//! without its trailing SHA-256, which the target appends (as `encode` does)
//! so that inputs get past the checksum to the layout checks; the raw input,
//! unsealed, and the header reader are fed too.
//! Properties beyond no panic / no hang: an accepted file holds exactly the
//! records its body lists, each found by `get` with its identity and
//! outcome, and encoding them again gives back the same bytes (one file per
//! cache: the format is canonical).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

use vigil_rules::checks::file_integrity::cache;

const HEADER: usize = 32;
const RECORD: usize = 25;

fuzz_target!(|data: &[u8]| {
    let _ = cache::decode(data);
    let _ = cache::last_full_pass(data);
    let mut file = data.to_vec();
    file.extend_from_slice(&Sha256::digest(data));
    let Ok(c) = cache::decode(&file[..]) else {
        return;
    };
    assert_eq!(
        cache::last_full_pass(&file[..]).ok(),
        Some(c.last_full_pass)
    );
    let body = &data[HEADER..];
    assert_eq!(body.len() % RECORD, 0, "accepted a partial record");
    assert_eq!(c.len(), body.len() / RECORD);
    let recs: Vec<cache::Rec> = body
        .chunks(RECORD)
        .map(|r| {
            let key: [u8; 16] = r[..16].try_into().unwrap();
            let ident: [u8; 8] = r[16..24].try_into().unwrap();
            let outcome = match r[24] {
                1 => cache::Outcome::Matched,
                2 => cache::Outcome::Mismatched,
                b => panic!("accepted outcome byte {b}"),
            };
            let got = c.get(&key).expect("a listed record is found");
            assert_eq!((got.ident, got.outcome), (ident, outcome));
            cache::Rec {
                key,
                ident,
                outcome,
            }
        })
        .collect();
    let mut again = Vec::new();
    cache::encode(&mut again, c.last_full_pass, &recs).unwrap();
    assert_eq!(again, file, "decode then encode changed the file");
});
