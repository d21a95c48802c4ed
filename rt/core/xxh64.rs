//! XXH64 checksums of image metadata and memory data, streaming so that a region's
//! runs can be hashed as they are written or read back.
#![deny(unsafe_code)]

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

#[inline(always)]
fn round(acc: u64, lane: u64) -> u64 {
    acc.wrapping_add(lane.wrapping_mul(P2)).rotate_left(31).wrapping_mul(P1)
}

#[inline(always)]
fn merge(acc: u64, val: u64) -> u64 {
    (acc ^ round(0, val)).wrapping_mul(P1).wrapping_add(P4)
}

#[inline(always)]
fn read_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

#[inline(always)]
fn read_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Streaming XXH64: `update` any number of times, then `digest`.
#[derive(Clone, Copy)]
pub struct Xxh64 {
    acc: [u64; 4],
    seed: u64,
    total: u64,
    buf: [u8; 32],
    buf_len: usize,
}

impl Xxh64 {
    pub const fn new(seed: u64) -> Xxh64 {
        Xxh64 {
            acc: [
                seed.wrapping_add(P1).wrapping_add(P2),
                seed.wrapping_add(P2),
                seed,
                seed.wrapping_sub(P1),
            ],
            seed,
            total: 0,
            buf: [0; 32],
            buf_len: 0,
        }
    }

    #[inline(always)]
    fn stripe(&mut self, s: &[u8]) {
        self.acc[0] = round(self.acc[0], read_u64(&s[0..8]));
        self.acc[1] = round(self.acc[1], read_u64(&s[8..16]));
        self.acc[2] = round(self.acc[2], read_u64(&s[16..24]));
        self.acc[3] = round(self.acc[3], read_u64(&s[24..32]));
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.buf_len > 0 {
            let take = core::cmp::min(32 - self.buf_len, data.len());
            self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&data[..take]);
            self.buf_len += take;
            data = &data[take..];
            if self.buf_len < 32 {
                return;
            }
            let buf = self.buf;
            self.stripe(&buf);
            self.buf_len = 0;
        }
        while data.len() >= 32 {
            self.stripe(&data[..32]);
            data = &data[32..];
        }
        self.buf[..data.len()].copy_from_slice(data);
        self.buf_len = data.len();
    }

    pub fn digest(&self) -> u64 {
        let mut h = if self.total >= 32 {
            let a = self.acc;
            let mut h = a[0]
                .rotate_left(1)
                .wrapping_add(a[1].rotate_left(7))
                .wrapping_add(a[2].rotate_left(12))
                .wrapping_add(a[3].rotate_left(18));
            for lane in a {
                h = merge(h, lane);
            }
            h
        } else {
            self.seed.wrapping_add(P5)
        };
        h = h.wrapping_add(self.total);
        let mut rest = &self.buf[..self.buf_len];
        while rest.len() >= 8 {
            h ^= round(0, read_u64(rest));
            h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
            rest = &rest[8..];
        }
        if rest.len() >= 4 {
            h ^= (read_u32(rest) as u64).wrapping_mul(P1);
            h = h.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
            rest = &rest[4..];
        }
        for &b in rest {
            h ^= (b as u64).wrapping_mul(P5);
            h = h.rotate_left(11).wrapping_mul(P1);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(P2);
        h ^= h >> 29;
        h = h.wrapping_mul(P3);
        h ^= h >> 32;
        h
    }
}

pub fn xxh64(data: &[u8], seed: u64) -> u64 {
    let mut s = Xxh64::new(seed);
    s.update(data);
    s.digest()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxh64_known_vectors() {
        assert_eq!(xxh64(b"", 0), 0xEF46_DB37_51D8_E999);
        assert_eq!(xxh64(b"a", 0), 0xD24E_C4F1_A98C_6E5B);
        assert_eq!(xxh64(b"abc", 0), 0x44BC_2CF5_AD77_0999);
    }

    #[test]
    fn xxh64_streaming_matches_one_shot() {
        let data: Vec<u8> = (0..1000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let whole = xxh64(&data, 0);
        for piece in [1, 3, 7, 31, 32, 33, 64, 100, 999, 1000] {
            let mut h = Xxh64::new(0);
            for chunk in data.chunks(piece) {
                h.update(chunk);
            }
            assert_eq!(h.digest(), whole, "pieces of {}", piece);
        }
        // Uneven pieces that straddle the 32-byte stripes.
        let mut h = Xxh64::new(0);
        let (a, rest) = data.split_at(5);
        let (b, c) = rest.split_at(290);
        h.update(a);
        h.update(&[]);
        h.update(b);
        h.update(c);
        assert_eq!(h.digest(), whole);
        assert_ne!(xxh64(&data, 1), whole, "the seed matters");
    }
}
