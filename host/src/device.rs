//! `--device auto|cpu|cuda[:N]` and `--threads N`.

use crate::config::MAX_THREADS;
use anyhow::{bail, Result};
use tch::Device;

/// Parses a device name; `auto` picks the first CUDA device when one is present.
pub fn parse_device(name: &str) -> Result<Device> {
    let name = name.trim().to_ascii_lowercase();
    Ok(match name.as_str() {
        "auto" => Device::cuda_if_available(),
        "cpu" => Device::Cpu,
        "cuda" | "gpu" => cuda(0)?,
        _ => match name.strip_prefix("cuda:") {
            Some(index) => match index.parse() {
                Ok(i) => cuda(i)?,
                Err(_) => bail!("invalid --device '{name}': the CUDA index must be a number"),
            },
            None => bail!("invalid --device '{name}': expected auto, cpu, cuda or cuda:N"),
        },
    })
}

/// `--threads`: libtorch intra-op threads, 1 to [`MAX_THREADS`].
pub fn parse_threads(text: &str) -> std::result::Result<usize, String> {
    match text.trim().parse::<i64>() {
        Ok(n) if (1..=MAX_THREADS as i64).contains(&n) => Ok(n as usize),
        Ok(n) => Err(format!(
            "{n} threads is out of range: give 1 to {MAX_THREADS}"
        )),
        Err(_) => Err(format!(
            "not a whole number of threads: give 1 to {MAX_THREADS}"
        )),
    }
}

fn cuda(index: usize) -> Result<Device> {
    let count = tch::Cuda::device_count() as usize;
    if index >= count {
        bail!("--device cuda:{index} asked for, but this machine has {count} CUDA device(s)");
    }
    Ok(Device::Cuda(index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_auto_parse() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        assert_eq!(parse_device("auto").unwrap(), Device::cuda_if_available());
    }

    #[test]
    fn bad_names_are_refused_with_the_name() {
        let err = parse_device("tpu").unwrap_err().to_string();
        assert!(err.contains("'tpu'"), "{err}");
        assert!(parse_device("cuda:x")
            .unwrap_err()
            .to_string()
            .contains("index"));
    }

    #[test]
    fn missing_cuda_device_is_refused() {
        let count = tch::Cuda::device_count();
        let err = parse_device(&format!("cuda:{count}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("CUDA device"), "{err}");
    }
}
