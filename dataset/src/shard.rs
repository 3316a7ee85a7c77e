//! Shard files: one safetensors file per `checkpoint_interval` samples, written to a temp file
//! in the output folder and renamed into place only when complete, hashed with SHA-256.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, View};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::stream::ShardFile;
use crate::trajectory::PARAM_FIELDS;

#[cfg(target_endian = "big")]
compile_error!("safetensors stores little-endian values; this crate copies them as native.");

pub use crate::stream::{TEMP_PREFIX, TEMP_SUFFIX};

/// Key of the one `__metadata__` entry (a single key keeps the header byte-deterministic:
/// safetensors serialises the metadata map in hash order).
pub const METADATA_KEY: &str = "trajhost";

pub fn shard_file_name(k: usize) -> String {
    format!("shard-{k:05}.safetensors")
}

/// Shape information stored in each shard's `__metadata__` (JSON under [`METADATA_KEY`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardMeta {
    pub format_version: u32,
    pub first_index: u64,
    pub count: usize,
    pub frames: usize,
    pub horizon: usize,
    pub height: usize,
    pub width: usize,
    pub classes: Vec<String>,
    pub params_fields: Vec<String>,
}

/// The decoded contents of one shard, row-major, `n` samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Shard {
    pub n: usize,
    /// Clip length T.
    pub t: usize,
    pub h: usize,
    pub w: usize,
    /// Extra labelled future frames H; `positions` has T + H rows per sample.
    pub horizon: usize,
    pub indices: Vec<u64>,
    /// n × T × 3 × h × w.
    pub videos: Vec<u8>,
    /// Class index into `Class::ALL`.
    pub labels: Vec<u8>,
    /// n × (T + H) × 3, normalised camera frame.
    pub positions: Vec<f32>,
    /// n × 3 × 3.
    pub intrinsics: Vec<f32>,
    /// n × 4 × 4, world → camera.
    pub extrinsics: Vec<f32>,
    /// n × K, K = `PARAM_FIELDS.len()`.
    pub params: Vec<f32>,
}

impl Shard {
    /// A zeroed shard ready to be filled by the generator.
    pub fn zeroed(
        first_index: u64,
        n: usize,
        t: usize,
        horizon: usize,
        h: usize,
        w: usize,
    ) -> Self {
        Shard {
            n,
            t,
            h,
            w,
            horizon,
            indices: (first_index..first_index + n as u64).collect(),
            videos: vec![0; n * t * 3 * h * w],
            labels: vec![0; n],
            positions: vec![0.0; n * (t + horizon) * 3],
            intrinsics: vec![0.0; n * 9],
            extrinsics: vec![0.0; n * 16],
            params: vec![0.0; n * PARAM_FIELDS.len()],
        }
    }

    pub fn video_len(&self) -> usize {
        self.t * 3 * self.h * self.w
    }

    /// Video of sample `i` (0-based within the shard): T × 3 × h × w.
    pub fn video(&self, i: usize) -> &[u8] {
        &self.videos[i * self.video_len()..(i + 1) * self.video_len()]
    }

    /// Positions of sample `i`: (T + H) × 3.
    pub fn positions_of(&self, i: usize) -> &[f32] {
        let len = (self.t + self.horizon) * 3;
        &self.positions[i * len..(i + 1) * len]
    }

    /// Sample `i`'s row-major 3×3 K.
    pub fn intrinsics_of(&self, i: usize) -> [f32; 9] {
        self.intrinsics[i * 9..(i + 1) * 9]
            .try_into()
            .expect("nine values per sample")
    }

    pub fn params_of(&self, i: usize) -> &[f32] {
        let k = PARAM_FIELDS.len();
        &self.params[i * k..(i + 1) * k]
    }

    fn meta(&self, classes: &[String]) -> ShardMeta {
        ShardMeta {
            format_version: 1,
            first_index: self.indices.first().copied().unwrap_or(0),
            count: self.n,
            frames: self.t,
            horizon: self.horizon,
            height: self.h,
            width: self.w,
            classes: classes.to_vec(),
            params_fields: PARAM_FIELDS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// A tensor's dtype and shape only: `safetensors::serialize` then yields just the header
/// (8-byte length + JSON), which depends on nothing else.
struct HeaderOnly {
    dtype: Dtype,
    shape: Vec<usize>,
    len: usize,
}

impl View for HeaderOnly {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&[])
    }
    fn data_len(&self) -> usize {
        self.len
    }
}

/// Size and hash of a shard file as recorded in the manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub bytes: u64,
    pub sha256: String,
}

impl Shard {
    /// The file's bytes up to its videos: the header, then every other tensor in the header's
    /// offset order. The crate orders tensors by alignment, so the u8 `videos` come last and
    /// a writer can stream them as they are rendered. `videos` itself is not read (a streaming
    /// writer leaves it empty); its size follows from the shapes.
    pub fn file_prefix(&self, classes: &[String]) -> std::result::Result<Vec<u8>, String> {
        let indices: Vec<i64> = self.indices.iter().map(|&i| i as i64).collect();
        let (n, t, th) = (self.n, self.t, self.t + self.horizon);
        let k = PARAM_FIELDS.len();
        let tensors: [(&str, Dtype, Vec<usize>, &[u8]); 7] = [
            ("videos", Dtype::U8, vec![n, t, 3, self.h, self.w], &[]),
            ("labels", Dtype::U8, vec![n], &self.labels),
            (
                "indices",
                Dtype::I64,
                vec![n],
                bytemuck::cast_slice(&indices),
            ),
            (
                "positions",
                Dtype::F32,
                vec![n, th, 3],
                bytemuck::cast_slice(&self.positions),
            ),
            (
                "intrinsics",
                Dtype::F32,
                vec![n, 3, 3],
                bytemuck::cast_slice(&self.intrinsics),
            ),
            (
                "extrinsics",
                Dtype::F32,
                vec![n, 4, 4],
                bytemuck::cast_slice(&self.extrinsics),
            ),
            (
                "params",
                Dtype::F32,
                vec![n, k],
                bytemuck::cast_slice(&self.params),
            ),
        ];
        let mut lens = tensors.iter().map(|(_, dtype, shape, data)| {
            let len = shape.iter().product::<usize>() * dtype.size();
            (len, data.len())
        });
        // Every array but the videos must be complete: a short one would shift the videos.
        lens.next();
        if let Some((name, want, have)) = tensors[1..]
            .iter()
            .zip(lens)
            .find_map(|((name, ..), (want, have))| (want != have).then_some((name, want, have)))
        {
            return Err(format!(
                "tensor `{name}` has {have} bytes, its shape needs {want}"
            ));
        }
        let meta = serde_json::to_string(&self.meta(classes)).expect("metadata serialises");
        let metadata = Some(HashMap::from([(METADATA_KEY.to_string(), meta)]));
        let views = tensors.iter().map(|(name, dtype, shape, _)| {
            let len = shape.iter().product::<usize>() * dtype.size();
            let view = HeaderOnly {
                dtype: *dtype,
                shape: shape.clone(),
                len,
            };
            (*name, view)
        });
        let mut prefix = safetensors::serialize(views, &metadata)
            .map_err(|e| format!("building safetensors header: {e:?}"))?;
        let json: serde_json::Value =
            serde_json::from_slice(&prefix[8..]).expect("crate-made header");
        let mut order: Vec<(u64, &str, &[u8])> = tensors
            .iter()
            .map(|(name, _, _, data)| {
                let offset = json[name]["data_offsets"][0].as_u64().expect("offset");
                (offset, *name, *data)
            })
            .collect();
        order.sort_by_key(|(offset, ..)| *offset);
        let (videos_at, last, _) = order.pop().expect("seven tensors");
        let labels_len: usize = order.iter().map(|(_, _, d)| d.len()).sum();
        if last != "videos" || videos_at != labels_len as u64 {
            return Err(format!(
                "the safetensors crate put `{last}` last, at {videos_at}: videos must be last"
            ));
        }
        prefix.reserve(labels_len);
        order
            .iter()
            .for_each(|(_, _, d)| prefix.extend_from_slice(d));
        Ok(prefix)
    }
}

/// Writes `shard` as `dir/name` atomically (temp file in `dir`, then rename): the whole-shard
/// form of what the generator streams. The SHA-256 is computed on a second thread while this
/// one writes, from the same buffers: no second pass over the file.
pub fn write_shard(dir: &Path, name: &str, shard: &Shard, classes: &[String]) -> Result<Written> {
    let prefix = shard
        .file_prefix(classes)
        .map_err(|e| Error::format(dir.join(name), e))?;
    if shard.videos.len() != shard.n * shard.video_len() {
        return Err(Error::format(
            dir.join(name),
            format!(
                "tensor `videos` has {} bytes, its shape needs {}",
                shard.videos.len(),
                shard.n * shard.video_len()
            ),
        ));
    }
    let mut file = ShardFile::create(dir)?;
    let pieces = [&prefix[..], &shard.videos[..]];
    let (digest, written) = std::thread::scope(|s| {
        let hashing = s.spawn(|| {
            let mut hasher = Sha256::new();
            pieces.iter().for_each(|p| hasher.update(p));
            hasher.finalize()
        });
        let written = pieces.iter().try_for_each(|p| file.write(p));
        (hashing.join().expect("hash thread panicked"), written)
    });
    written?;
    let bytes = file.persist(dir, name)?;
    Ok(Written {
        bytes,
        sha256: hex(&digest),
    })
}

/// Lowercase hex, as the manifest stores digests.
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// (size, lowercase hex SHA-256) of a file, read through a memory map.
pub fn hash_file(path: &Path) -> Result<(u64, String)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut hasher = Sha256::new();
    if len > 0 {
        // SAFETY: shard files are never modified in place (only created and renamed).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        hasher.update(&map[..]);
    }
    Ok((len, hex(&hasher.finalize())))
}

/// Reads and validates a shard file (dtypes, shapes, metadata consistency).
pub fn read_shard(path: &Path) -> Result<(ShardMeta, Shard)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: as in `hash_file`.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    let bad = |message: String| Error::format(path, message);
    let (_, header) = SafeTensors::read_metadata(&map)
        .map_err(|e| bad(format!("not a safetensors file: {e:?}")))?;
    let meta_json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(METADATA_KEY))
        .ok_or_else(|| bad(format!("missing __metadata__ key {METADATA_KEY:?}")))?;
    let meta: ShardMeta =
        serde_json::from_str(meta_json).map_err(|e| bad(format!("bad shard metadata: {e}")))?;
    let st = SafeTensors::deserialize(&map).map_err(|e| bad(format!("{e:?}")))?;
    let (n, t, th, h, w) = (
        meta.count,
        meta.frames,
        meta.frames + meta.horizon,
        meta.height,
        meta.width,
    );
    let get = |name: &str, dtype: Dtype, shape: &[usize]| -> Result<&[u8]> {
        let view = st
            .tensor(name)
            .map_err(|_| bad(format!("missing tensor `{name}`")))?;
        if view.dtype() != dtype || view.shape() != shape {
            return Err(bad(format!(
                "tensor `{name}` is {:?} {:?}, expected {dtype:?} {shape:?}",
                view.dtype(),
                view.shape()
            )));
        }
        Ok(view.data())
    };
    let f32s = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        Ok(bytemuck::pod_collect_to_vec(get(name, Dtype::F32, shape)?))
    };
    let indices: Vec<i64> = bytemuck::pod_collect_to_vec(get("indices", Dtype::I64, &[n])?);
    let shard = Shard {
        n,
        t,
        h,
        w,
        horizon: meta.horizon,
        indices: indices.iter().map(|&i| i as u64).collect(),
        videos: get("videos", Dtype::U8, &[n, t, 3, h, w])?.to_vec(),
        labels: get("labels", Dtype::U8, &[n])?.to_vec(),
        positions: f32s("positions", &[n, th, 3])?,
        intrinsics: f32s("intrinsics", &[n, 3, 3])?,
        extrinsics: f32s("extrinsics", &[n, 4, 4])?,
        params: f32s("params", &[n, PARAM_FIELDS.len()])?,
    };
    let expected: Vec<u64> = (meta.first_index..meta.first_index + n as u64).collect();
    if shard.indices != expected {
        return Err(bad(format!(
            "indices are not {}..{} as the metadata says",
            meta.first_index,
            meta.first_index + n as u64
        )));
    }
    Ok((meta, shard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_round_trips_and_hash_matches_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut shard = Shard::zeroed(32, 3, 2, 1, 16, 16);
        shard
            .videos
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = i as u8);
        shard.positions[4] = 1.5;
        shard.labels = vec![0, 1, 3];
        let classes = vec!["linear".to_string()];
        let written = write_shard(dir.path(), "s.safetensors", &shard, &classes).unwrap();
        let path = dir.path().join("s.safetensors");
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(written.bytes, bytes.len() as u64);
        let digest: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(written.sha256, digest);
        let (meta, back) = read_shard(&path).unwrap();
        assert_eq!(back, shard);
        assert_eq!((meta.first_index, meta.count), (32, 3));
        // No temp files remain.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Writing again yields identical bytes (deterministic header).
        write_shard(dir.path(), "s.safetensors", &shard, &classes).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    /// A tensor with its data, for the crate's own whole-buffer serialisation.
    struct Full<'a>(Dtype, Vec<usize>, &'a [u8]);

    impl View for Full<'_> {
        fn dtype(&self) -> Dtype {
            self.0
        }
        fn shape(&self) -> &[usize] {
            &self.1
        }
        fn data(&self) -> Cow<'_, [u8]> {
            Cow::Borrowed(self.2)
        }
        fn data_len(&self) -> usize {
            self.2.len()
        }
    }

    /// The streamed layout (prefix, then videos) is byte for byte what
    /// `safetensors::serialize` makes of the same tensors in one buffer.
    #[test]
    fn prefix_then_videos_is_what_the_crate_serialises() {
        let mut shard = Shard::zeroed(4000, 5, 3, 2, 16, 24);
        let mut x = 7u32;
        let mut next = || {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            x
        };
        shard.videos.iter_mut().for_each(|v| *v = next() as u8);
        shard.labels.iter_mut().for_each(|v| *v = next() as u8 % 4);
        for array in [
            &mut shard.positions,
            &mut shard.intrinsics,
            &mut shard.extrinsics,
            &mut shard.params,
        ] {
            array.iter_mut().for_each(|v| *v = next() as f32 / 1e9);
        }
        let classes = vec!["linear".to_string(), "helical".to_string()];
        let indices: Vec<i64> = shard.indices.iter().map(|&i| i as i64).collect();
        let (n, t, k) = (shard.n, shard.t, PARAM_FIELDS.len());
        let f32s = |v: &[f32]| -> Vec<u8> { bytemuck::cast_slice(v).to_vec() };
        let (pos, intr, extr, par) = (
            f32s(&shard.positions),
            f32s(&shard.intrinsics),
            f32s(&shard.extrinsics),
            f32s(&shard.params),
        );
        let tensors = vec![
            (
                "videos",
                Full(Dtype::U8, vec![n, t, 3, 16, 24], &shard.videos),
            ),
            ("labels", Full(Dtype::U8, vec![n], &shard.labels)),
            (
                "indices",
                Full(Dtype::I64, vec![n], bytemuck::cast_slice(&indices)),
            ),
            ("positions", Full(Dtype::F32, vec![n, t + 2, 3], &pos)),
            ("intrinsics", Full(Dtype::F32, vec![n, 3, 3], &intr)),
            ("extrinsics", Full(Dtype::F32, vec![n, 4, 4], &extr)),
            ("params", Full(Dtype::F32, vec![n, k], &par)),
        ];
        let meta = serde_json::to_string(&shard.meta(&classes)).unwrap();
        let metadata = Some(HashMap::from([(METADATA_KEY.to_string(), meta)]));
        let reference = safetensors::serialize(tensors, &metadata).unwrap();

        let mut streamed = shard.file_prefix(&classes).unwrap();
        streamed.extend_from_slice(&shard.videos);
        assert!(
            streamed == reference,
            "streamed layout differs from the crate's"
        );
        let dir = tempfile::tempdir().unwrap();
        write_shard(dir.path(), "s.safetensors", &shard, &classes).unwrap();
        assert!(std::fs::read(dir.path().join("s.safetensors")).unwrap() == reference);

        // The prefix ignores the videos buffer, but not a short label array.
        let head = Shard {
            videos: Vec::new(),
            ..shard.clone()
        };
        assert_eq!(
            head.file_prefix(&classes).unwrap(),
            &reference[..reference.len() - shard.videos.len()]
        );
        let short = Shard {
            positions: vec![0.0; 3],
            ..shard
        };
        let err = short.file_prefix(&classes).unwrap_err();
        assert!(err.contains("positions"), "{err}");
    }

    #[test]
    fn truncated_shard_is_a_format_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let shard = Shard::zeroed(0, 2, 2, 1, 16, 16);
        write_shard(dir.path(), "s.safetensors", &shard, &[]).unwrap();
        let path = dir.path().join("s.safetensors");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        let err = read_shard(&path).unwrap_err().to_string();
        assert!(err.contains("s.safetensors"), "{err}");
    }
}
