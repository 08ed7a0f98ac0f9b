//! The independent oracle: the RustCrypto `chacha20poly1305` crate, which the crate sealed with before `ring`. Every
//! sealed body must be byte-identical under both, and each must open what the other sealed.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::super::*;

fn cipher(key: &SessionKey, salt: &[u8; SALT_LEN], dir: Direction) -> ChaCha20Poly1305 {
    ChaCha20Poly1305::new_from_slice(derive_direction_key(key, salt, dir).as_slice()).expect("a 32-byte key")
}

/// Ciphertext then tag of `plaintext`, sealed by the oracle as frame `counter` with associated data `ad`.
pub(super) fn seal(
    key: &SessionKey,
    salt: &[u8; SALT_LEN],
    dir: Direction,
    counter: u64,
    ad: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    let mut buf = plaintext.to_vec();
    let nonce = Nonce::from(nonce_bytes(counter));
    let tag = cipher(key, salt, dir).encrypt_in_place_detached(&nonce, ad, &mut buf).expect("seals");
    buf.extend_from_slice(&tag);
    buf
}

/// The oracle's opening of a sealed body (the associated data is its length, as the protocol says).
fn open(key: &SessionKey, salt: &[u8; SALT_LEN], dir: Direction, counter: u64, body: &[u8]) -> Option<Vec<u8>> {
    let (ciphertext, tag) = body.split_last_chunk::<TAG_LEN>()?;
    let mut buf = ciphertext.to_vec();
    let ad = u32::try_from(body.len()).ok()?.to_be_bytes();
    let nonce = Nonce::from(nonce_bytes(counter));
    cipher(key, salt, dir).decrypt_in_place_detached(&nonce, &ad, &mut buf, &Tag::from(*tag)).ok()?;
    Some(buf)
}

#[test]
fn ring_and_the_rustcrypto_oracle_agree_byte_for_byte() {
    let mut rng = StdRng::seed_from_u64(0x006d_6f76_616e);
    for case in 0..200 {
        let key = SessionKey::from_bytes(rng.r#gen());
        let salt: [u8; SALT_LEN] = rng.r#gen();
        let dir = if case % 2 == 0 { Direction::ClientToServer } else { Direction::ServerToClient };
        let mut sealer = Sealer::new(&key, &salt, dir);
        let mut opener = Opener::new(&key, &salt, dir);
        for counter in 0..5u64 {
            // Lengths around the 64-byte ChaCha20 block and the 16-byte Poly1305 block, and some long ones.
            let len = match rng.gen_range(0..4) {
                0 => rng.gen_range(0..4),
                1 => rng.gen_range(60..70),
                2 => rng.gen_range(0..400),
                _ => rng.gen_range(1000..20_000),
            };
            let plaintext: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
            let mut ours = BytesMut::new();
            sealer.seal_body_into(&plaintext, &mut ours).unwrap();
            let ad = u32::try_from(len + TAG_LEN).unwrap().to_be_bytes();
            let theirs = seal(&key, &salt, dir, counter, &ad, &plaintext);
            assert_eq!(&ours[..], &theirs[..], "case {case}, frame {counter}, {len} bytes");
            assert_eq!(open(&key, &salt, dir, counter, &ours).as_deref(), Some(&plaintext[..]));
            assert_eq!(opener.open(&theirs).unwrap(), plaintext);
        }
        // A flipped bit fails under both.
        let mut body = seal(&key, &salt, dir, 5, &(3 + TAG_LEN as u32).to_be_bytes(), b"abc");
        let at = rng.gen_range(0..body.len());
        body[at] ^= 1 << rng.gen_range(0..8);
        assert_eq!(open(&key, &salt, dir, 5, &body), None);
        assert_eq!(opener.open(&body), Err(CryptoError::Authentication));
    }
}
