//! SHA-256 and SHA-512 whose running state can be saved and restored, so an upload begun on
//! one wharf node can be continued and verified on another without re-reading its bytes
//! (the `sha2` hashers keep their state private). The block compression is `sha2`'s (CPU SHA
//! extensions when present); only the buffering and padding of FIPS 180-4 live here.

/// The first words of SHA-256 (FIPS 180-4 §5.3.3).
const H256: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// The first words of SHA-512 (FIPS 180-4 §5.3.5).
const H512: [u64; 8] = [
    0x6a09e667f3bcc908,
    0xbb67ae8584caa73b,
    0x3c6ef372fe94f82b,
    0xa54ff53a5f1d36f1,
    0x510e527fade682d1,
    0x9b05688c2b3e6c1f,
    0x1f83d9abfb41bd6b,
    0x5be0cd19137e2179,
];

macro_rules! resumable_sha {
    ($name:ident, $word:ty, $block:literal, $len_bytes:literal, $init:expr, $compress:path, $tag:literal) => {
        #[derive(Clone)]
        pub(crate) struct $name {
            state: [$word; 8],
            /// Bytes hashed so far, including those in `buf`.
            len: u64,
            buf: [u8; $block],
            buf_len: usize,
        }

        impl $name {
            /// The tag byte that starts this hasher's saved state.
            pub(crate) const TAG: u8 = $tag;
            const WORD: usize = std::mem::size_of::<$word>();
            /// Saved state length: tag, length, words, buffered count, buffer.
            pub(crate) const SAVED_LEN: usize = 1 + 8 + 8 * Self::WORD + 1 + $block;

            pub(crate) fn new() -> Self {
                Self {
                    state: $init,
                    len: 0,
                    buf: [0; $block],
                    buf_len: 0,
                }
            }

            pub(crate) fn update(&mut self, mut data: &[u8]) {
                self.len += data.len() as u64;
                if self.buf_len > 0 {
                    let take = ($block - self.buf_len).min(data.len());
                    self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&data[..take]);
                    self.buf_len += take;
                    data = &data[take..];
                    if self.buf_len < $block {
                        return;
                    }
                    $compress(&mut self.state, &[self.buf]);
                    self.buf_len = 0;
                }
                let (blocks, rest) = data.as_chunks::<$block>();
                if !blocks.is_empty() {
                    $compress(&mut self.state, blocks);
                }
                self.buf[..rest.len()].copy_from_slice(rest);
                self.buf_len = rest.len();
            }

            pub(crate) fn finish(mut self) -> Vec<u8> {
                let bits = (self.len as u128) * 8;
                let mut tail = [0u8; 2 * $block];
                tail[..self.buf_len].copy_from_slice(&self.buf[..self.buf_len]);
                tail[self.buf_len] = 0x80;
                let total = if self.buf_len + 1 + $len_bytes <= $block {
                    $block
                } else {
                    2 * $block
                };
                let len_be = bits.to_be_bytes();
                tail[total - $len_bytes..total].copy_from_slice(&len_be[16 - $len_bytes..]);
                let (blocks, _) = tail[..total].as_chunks::<$block>();
                $compress(&mut self.state, blocks);
                self.state.iter().flat_map(|w| w.to_be_bytes()).collect()
            }

            pub(crate) fn save(&self) -> Vec<u8> {
                let mut out = Vec::with_capacity(Self::SAVED_LEN);
                out.push(Self::TAG);
                out.extend_from_slice(&self.len.to_be_bytes());
                for w in self.state {
                    out.extend_from_slice(&w.to_be_bytes());
                }
                out.push(self.buf_len as u8);
                out.extend_from_slice(&self.buf);
                out
            }

            pub(crate) fn restore(saved: &[u8]) -> Option<Self> {
                if saved.len() != Self::SAVED_LEN || saved[0] != Self::TAG {
                    return None;
                }
                let len = u64::from_be_bytes(saved[1..9].try_into().ok()?);
                let mut state = [0; 8];
                for (i, w) in state.iter_mut().enumerate() {
                    let at = 9 + i * Self::WORD;
                    *w = <$word>::from_be_bytes(saved[at..at + Self::WORD].try_into().ok()?);
                }
                let at = 9 + 8 * Self::WORD;
                let buf_len = saved[at] as usize;
                if buf_len >= $block || (len % $block as u64) as usize != buf_len {
                    return None;
                }
                let buf: [u8; $block] = saved[at + 1..].try_into().ok()?;
                Some(Self {
                    state,
                    len,
                    buf,
                    buf_len,
                })
            }
        }
    };
}

resumable_sha!(Sha256, u32, 64, 8, H256, sha2::block_api::compress256, 1);
resumable_sha!(Sha512, u64, 128, 16, H512, sha2::block_api::compress512, 2);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha2::Digest as _;

    #[test]
    fn known_answers() {
        let mut h = Sha256::new();
        h.update(b"abc");
        assert_eq!(
            hex::encode(h.finish()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut h = Sha512::new();
        h.update(b"abc");
        assert_eq!(
            hex::encode(h.finish()),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
    }

    proptest! {
        /// Any data, split anywhere, saved and restored at the split, hashes as `sha2` does.
        #[test]
        fn matches_sha2_across_save_and_restore(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            split in any::<prop::sample::Index>(),
        ) {
            let at = split.index(data.len() + 1);
            let mut a = Sha256::new();
            a.update(&data[..at]);
            let mut a = Sha256::restore(&a.save()).unwrap();
            a.update(&data[at..]);
            prop_assert_eq!(a.finish(), sha2::Sha256::digest(&data).to_vec());

            let mut b = Sha512::new();
            b.update(&data[..at]);
            let mut b = Sha512::restore(&b.save()).unwrap();
            b.update(&data[at..]);
            prop_assert_eq!(b.finish(), sha2::Sha512::digest(&data).to_vec());
        }

        /// Saved state that was tampered with or truncated is refused, never trusted.
        #[test]
        fn restore_refuses_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Some(h) = Sha256::restore(&bytes) {
                prop_assert_eq!(h.save(), bytes);
            }
        }
    }
}
