//! TensorBoard scalars: an `events.out.tfevents.*` file that `tensorboard --logdir results/`
//! opens. The format is TFRecord framing around `Event` protobufs; only the handful of fields
//! a scalar needs are encoded here, which keeps a protobuf toolchain out of the build.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A setting as TensorBoard's HParams tab shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum HParam {
    Number(f64),
    Text(String),
}

pub struct EventWriter {
    file: std::fs::File,
    pub path: PathBuf,
}

impl EventWriter {
    /// Starts a new event file in `dir` (TensorBoard reads every such file in a folder).
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
        let path = dir.join(format!(
            "{}{}.{:09}.trajhost",
            crate::rundir::EVENTS_PREFIX,
            now.as_secs(),
            now.subsec_nanos()
        ));
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut writer = EventWriter { file, path };
        let mut event = Vec::new();
        double_field(&mut event, 1, now.as_secs_f64());
        bytes_field(&mut event, 3, b"brain.Event:2");
        writer.record(&event)?;
        Ok(writer)
    }

    pub fn scalar(&mut self, tag: &str, step: i64, value: f64) -> Result<()> {
        let mut value_message = Vec::new();
        bytes_field(&mut value_message, 1, tag.as_bytes());
        value_message.push((2 << 3) | 5); // simple_value: float, fixed32
        value_message.extend_from_slice(&(value as f32).to_le_bytes());
        self.summary(step, &value_message)
    }

    /// A PNG as an image summary (TensorBoard's Images tab); refused unless it is a PNG.
    pub fn png(&mut self, tag: &str, step: i64, png: &[u8]) -> Result<()> {
        // The IHDR chunk follows the 8-byte signature: length, "IHDR", width, height (big
        // endian), bit depth, colour type.
        anyhow::ensure!(
            png.len() > 26 && png.starts_with(b"\x89PNG\r\n\x1a\n") && &png[12..16] == b"IHDR",
            "{tag}: not a PNG"
        );
        let dimension = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
        // Summary.Image.colorspace: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA.
        let colorspace = match png[25] {
            0 => 1,
            4 => 2,
            6 => 4,
            _ => 3,
        };
        let mut image = Vec::new();
        image.push(1 << 3);
        varint(&mut image, u64::from(dimension(20)));
        image.push(2 << 3);
        varint(&mut image, u64::from(dimension(16)));
        image.push(3 << 3);
        varint(&mut image, colorspace);
        bytes_field(&mut image, 4, png);
        let mut value_message = Vec::new();
        bytes_field(&mut value_message, 1, tag.as_bytes());
        bytes_field(&mut value_message, 4, &image);
        self.summary(step, &value_message)
    }

    /// The run's settings for TensorBoard's HParams tab: a `session_start_info` of the hparams
    /// plugin (`tensorboard/plugins/hparams/plugin_data.proto`), whose metrics TensorBoard
    /// takes from the scalar tags.
    pub fn hparams(&mut self, params: &[(String, HParam)]) -> Result<()> {
        let mut session = Vec::new();
        for (name, value) in params {
            // google.protobuf.Value: number_value = 2 (double), string_value = 3.
            let mut proto_value = Vec::new();
            match value {
                HParam::Number(n) => double_field(&mut proto_value, 2, *n),
                HParam::Text(t) => bytes_field(&mut proto_value, 3, t.as_bytes()),
            }
            // A map entry: key = 1, value = 2.
            let mut entry = Vec::new();
            bytes_field(&mut entry, 1, name.as_bytes());
            bytes_field(&mut entry, 2, &proto_value);
            bytes_field(&mut session, 1, &entry);
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
        double_field(&mut session, 5, now.as_secs_f64());
        // HParamsPluginData: version = 1 (0, the default, is not written), session_start_info = 3.
        let mut content = Vec::new();
        bytes_field(&mut content, 3, &session);
        let mut plugin_data = Vec::new();
        bytes_field(&mut plugin_data, 1, b"hparams");
        bytes_field(&mut plugin_data, 2, &content);
        let mut metadata = Vec::new();
        bytes_field(&mut metadata, 1, &plugin_data);
        // The plugin's NULL_TENSOR: an empty float tensor (dtype DT_FLOAT = 1, one dim of 0).
        let null_tensor = [0x08, 0x01, 0x12, 0x02, 0x12, 0x00];
        let mut value_message = Vec::new();
        bytes_field(&mut value_message, 1, b"_hparams_/session_start_info");
        bytes_field(&mut value_message, 9, &metadata);
        bytes_field(&mut value_message, 8, &null_tensor);
        self.summary(0, &value_message)
    }

    /// An event at `step` holding a summary of one value.
    fn summary(&mut self, step: i64, value_message: &[u8]) -> Result<()> {
        let mut summary = Vec::new();
        bytes_field(&mut summary, 1, value_message);
        let mut event = Vec::new();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
        double_field(&mut event, 1, now.as_secs_f64());
        event.push(2 << 3); // step: int64, varint
        varint(&mut event, step as u64);
        bytes_field(&mut event, 5, &summary);
        self.record(&event)
    }

    /// TFRecord framing: length, its masked CRC-32C, data, the data's masked CRC-32C.
    fn record(&mut self, data: &[u8]) -> Result<()> {
        let length = (data.len() as u64).to_le_bytes();
        let mut framed = Vec::with_capacity(data.len() + 16);
        framed.extend_from_slice(&length);
        framed.extend_from_slice(&masked_crc(&length).to_le_bytes());
        framed.extend_from_slice(data);
        framed.extend_from_slice(&masked_crc(data).to_le_bytes());
        self.file.write_all(&framed)?;
        self.file.flush()?;
        Ok(())
    }
}

pub fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn double_field(out: &mut Vec<u8>, field: u8, value: f64) {
    out.push((field << 3) | 1);
    out.extend_from_slice(&value.to_le_bytes());
}

fn bytes_field(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push((field << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Reads back the scalars of an event file as (tag, step, value); checks every CRC.
pub fn read_scalars(path: &Path) -> Result<Vec<(String, i64, f32)>> {
    let bytes = std::fs::read(path)?;
    let mut scalars = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let length_bytes = &bytes[at..at + 8];
        let length = u64::from_le_bytes(length_bytes.try_into()?) as usize;
        anyhow::ensure!(
            u32::from_le_bytes(bytes[at + 8..at + 12].try_into()?) == masked_crc(length_bytes),
            "bad length CRC"
        );
        let data = &bytes[at + 12..at + 12 + length];
        anyhow::ensure!(
            u32::from_le_bytes(bytes[at + 12 + length..at + 16 + length].try_into()?)
                == masked_crc(data),
            "bad data CRC"
        );
        at += 16 + length;
        if let Some(scalar) = parse_scalar_event(data) {
            scalars.push(scalar);
        }
    }
    Ok(scalars)
}

fn parse_scalar_event(event: &[u8]) -> Option<(String, i64, f32)> {
    let (mut step, mut summary) = (0i64, None);
    for (field, value) in fields(event)? {
        match (field, value) {
            (2, Field::Varint(v)) => step = v as i64,
            (5, Field::Bytes(b)) => summary = Some(b),
            _ => {}
        }
    }
    let (_, Field::Bytes(value)) = fields(summary?)?.into_iter().next()? else {
        return None;
    };
    let (mut tag, mut number) = (String::new(), None);
    for (field, v) in fields(value)? {
        match (field, v) {
            (1, Field::Bytes(b)) => tag = String::from_utf8_lossy(b).into_owned(),
            (2, Field::Fixed32(f)) => number = Some(f32::from_le_bytes(f)),
            _ => {}
        }
    }
    // Images and the hparams record are summaries too, without a simple value.
    Some((tag, step, number?))
}

enum Field<'a> {
    Varint(u64),
    Fixed64,
    Fixed32([u8; 4]),
    Bytes(&'a [u8]),
}

fn fields(mut data: &[u8]) -> Option<Vec<(u8, Field<'_>)>> {
    let mut out = Vec::new();
    let read_varint = |data: &mut &[u8]| -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = data.split_first()?;
            *data = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    };
    while !data.is_empty() {
        let key = read_varint(&mut data)?;
        let field = (key >> 3) as u8;
        let value = match key & 7 {
            0 => Field::Varint(read_varint(&mut data)?),
            1 => {
                data = data.get(8..)?;
                Field::Fixed64
            }
            5 => {
                let (head, rest) = (data.get(..4)?, data.get(4..)?);
                data = rest;
                Field::Fixed32(head.try_into().ok()?)
            }
            2 => {
                let n = read_varint(&mut data)? as usize;
                let (head, rest) = (data.get(..n)?, data.get(n..)?);
                data = rest;
                Field::Bytes(head)
            }
            _ => return None,
        };
        out.push((field, value));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_masking_matches_tensorflow() {
        // CRC-32C("123456789") = 0xE3069283 (the standard check value), masked as TFRecord does.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(
            masked_crc(b"123456789"),
            0xE306_9283u32.rotate_right(15).wrapping_add(0xa282_ead8)
        );
    }

    #[test]
    fn scalars_round_trip_through_an_event_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = EventWriter::create(dir.path()).unwrap();
        writer.scalar("val/accuracy", 3, 0.75).unwrap();
        writer.scalar("train/loss", 4, 1.5).unwrap();
        let scalars = read_scalars(&writer.path).unwrap();
        assert_eq!(
            scalars,
            [
                ("val/accuracy".to_string(), 3, 0.75),
                ("train/loss".to_string(), 4, 1.5)
            ]
        );
    }
}
