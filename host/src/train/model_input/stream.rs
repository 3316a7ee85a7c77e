//! One plane of pixel bytes → standardised floats, written past the cache.
//!
//! A training batch's floats (50 MB at 32 videos) are more than the last-level cache, and the
//! backbone reads them only after the whole batch is written. Plain stores first read every
//! destination line into the cache (write-allocate) and evict what the step needs; AVX2's
//! non-temporal stores skip both: a batch takes 10–25 % less time (docs/bench.md). The values
//! are computed as the byte table's are, a float multiply then an add (`SCALE`, `SHIFT`), so
//! every path gives the same bits (tested).

/// `dst[i] = table[src[i]]`, minus `table[median[i]]` when a background `median` is given.
pub(super) fn standardise(src: &[u8], median: Option<&[u8]>, dst: &mut [f32], table: &[f32; 256]) {
    assert_eq!(src.len(), dst.len(), "bytes per plane");
    assert!(
        median.is_none_or(|m| m.len() == dst.len()),
        "median per plane"
    );
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is available (checked just above); the lengths are checked above.
        unsafe { avx2(src, median, dst, table) };
        return;
    }
    scalar(src, median, dst, table);
}

fn scalar(src: &[u8], median: Option<&[u8]>, dst: &mut [f32], table: &[f32; 256]) {
    match median {
        None => {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = table[s as usize];
            }
        }
        Some(median) => {
            for ((d, &s), &m) in dst.iter_mut().zip(src).zip(median) {
                *d = table[s as usize] - table[m as usize];
            }
        }
    }
}

/// The scalar path up to the first 32-byte aligned float, 8 floats per non-temporal store from
/// there, the scalar path for the last few.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn avx2(src: &[u8], median: Option<&[u8]>, dst: &mut [f32], table: &[f32; 256]) {
    use std::arch::x86_64::*;
    let n = dst.len();
    let head = dst.as_ptr().align_offset(32).min(n);
    let end = head + (n - head) / 8 * 8;
    let (scale, shift) = (_mm256_set1_ps(super::SCALE), _mm256_set1_ps(super::SHIFT));
    // Eight bytes from `bytes[i..]` as standardised floats: int → float, × scale, + shift.
    let load = |bytes: &[u8], i: usize| {
        let eight = _mm_loadl_epi64(bytes.as_ptr().add(i) as *const __m128i);
        let floats = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(eight));
        _mm256_add_ps(_mm256_mul_ps(floats, scale), shift)
    };
    scalar(
        &src[..head],
        median.map(|m| &m[..head]),
        &mut dst[..head],
        table,
    );
    for i in (head..end).step_by(8) {
        let value = match median {
            None => load(src, i),
            Some(median) => _mm256_sub_ps(load(src, i), load(median, i)),
        };
        _mm256_stream_ps(dst.as_mut_ptr().add(i), value);
    }
    // Non-temporal stores are weakly ordered: fence them before another thread reads the batch.
    _mm_sfence();
    scalar(
        &src[end..],
        median.map(|m| &m[end..]),
        &mut dst[end..],
        table,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every start (aligned or not) and length around the 8-float stores, with and without a
    /// median, gives the table's values to the bit.
    #[test]
    fn every_alignment_and_length_gives_the_tables_bits() {
        let table = super::super::table();
        let bytes: Vec<u8> = (0..600u32).map(|i| (i * 7 % 256) as u8).collect();
        let median: Vec<u8> = (0..600u32).map(|i| (i * 13 % 256) as u8).collect();
        let mut out = vec![0f32; 600];
        for start in 0..9 {
            for len in [0, 1, 7, 8, 9, 63, 520] {
                for median in [None, Some(&median[start..start + len])] {
                    let dst = &mut out[start..start + len];
                    standardise(&bytes[..len], median, dst, &table);
                    let mut expected = vec![0f32; len];
                    scalar(&bytes[..len], median, &mut expected, &table);
                    let same = dst
                        .iter()
                        .zip(&expected)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(
                        same,
                        "start {start}, length {len}, median {}",
                        median.is_some()
                    );
                }
            }
        }
    }
}
