//! `trajhost predict` on untrusted files (the GIF-bomb issue): a decompression bomb, a GIF of
//! thousands of frames, `.npy` shapes that wrap, special files named like videos, a PNG folder
//! with a frame of another size or a FIFO among its frames, an impossible recorded clip shape, an
//! `--overlay` that is not a GIF, a shard sample whose intrinsics are no lens and a model whose
//! outputs are NaN. Each is refused with an
//! ordinary exit code and a message naming the file and what is wrong — or, for the long GIF,
//! read keeping only the frames the model needs — within bounded time and memory. Through the
//! real binary on one tiny run trained once for this file.

mod common;

use common::{
    copy, edit_checkpoints, set_intrinsic, set_limit, tiny_dataset, trained_template_run, workspace,
};
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The template trained for 1 epoch on the tiny dataset (clips of 8 frames of 32×32).
fn run_dir() -> PathBuf {
    static RUN: OnceLock<tempfile::TempDir> = OnceLock::new();
    RUN.get_or_init(|| trained_template_run(1))
        .path()
        .join("run")
}

/// A copy of the shared run, for tests that damage it.
fn copy_of_run() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    copy(&run_dir(), dir.path());
    let run = dir.path().join("run");
    (dir, run)
}

/// The address space a predict child may use: libtorch maps far more than it touches, so this
/// is no measure of memory, only a ceiling that turns an unbounded allocation (the bomb read
/// before the fix, /dev/zero read whole) into a failed allocation instead of the OOM killer.
const ADDRESS_SPACE: u64 = 6 << 30;

/// What a child did: how it ended, what it printed, its peak resident memory and wall time.
struct Measured {
    status: ExitStatus,
    output: String,
    peak_rss_mb: f64,
    seconds: f64,
}

/// Runs trajhost with `args` under [`ADDRESS_SPACE`], killed after `limit` (then this fails:
/// the command hung), and measures it: `wait4` gives the child's own peak RSS.
// The child is reaped by `wait4`, which std's `Child::wait` is not: only it gives the rusage.
#[allow(clippy::zombie_processes)]
fn measured(args: &[&str], limit: Duration) -> Measured {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trajhost"));
    command
        .args(args)
        .current_dir(workspace())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        command.pre_exec(|| set_limit(libc::RLIMIT_AS, ADDRESS_SPACE));
    }
    let start = Instant::now();
    let mut child = command.spawn().expect("trajhost runs");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = r.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut hung = false;
    loop {
        // SAFETY: pid is our own child, not yet waited for.
        let got = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(got >= 0, "wait4: {}", std::io::Error::last_os_error());
        if got == pid {
            break;
        }
        if start.elapsed() > limit && !hung {
            hung = true;
            // SAFETY: the child has not been reaped, so the pid is still ours.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let seconds = start.elapsed().as_secs_f64();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout.join().unwrap()),
        String::from_utf8_lossy(&stderr.join().unwrap())
    );
    assert!(!hung, "{args:?} hung (killed after {limit:?}): {output}");
    Measured {
        status: ExitStatus::from_raw(status),
        output,
        // ru_maxrss is in KiB on Linux.
        peak_rss_mb: usage.ru_maxrss as f64 / 1024.0,
        seconds,
    }
}

/// `predict --run RUN VIDEO extra...`, measured.
fn predict(run: &Path, video: &Path, extra: &[&str]) -> Measured {
    let mut args = vec![
        "predict",
        "--run",
        run.to_str().unwrap(),
        video.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    measured(&args, Duration::from_secs(60))
}

/// A refusal a user can read: an ordinary exit code (no signal, no panic, no abort) and a
/// message holding every needle.
fn refused(m: &Measured, needles: &[&str]) -> String {
    let code = m.status.code();
    assert!(
        matches!(code, Some(c) if (1..128).contains(&c)),
        "exit {:?}: {}",
        m.status,
        m.output
    );
    assert!(!m.output.contains("panicked"), "{}", m.output);
    assert!(!m.output.contains("backtrace"), "{}", m.output);
    for needle in needles {
        assert!(
            m.output.contains(needle),
            "{needle:?} missing: {}",
            m.output
        );
    }
    m.output.clone()
}

fn succeeded(m: &Measured) -> &str {
    assert!(m.status.success(), "exit {:?}: {}", m.status, m.output);
    &m.output
}

// ---- hostile files, built here ----

/// A `.npy` v1 file: `header` (the dict) padded as NumPy pads it, then `data`.
/// `bytes` written to a new file `name` in `dir`; its path.
fn written(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn npy(path: &Path, header: &str, data: &[u8]) {
    std::fs::write(path, trajhost_dataset::export::npy_file(header, data)).unwrap();
}

/// A good clip for the model: `(8, 3, 32, 32)` u8, a bright square moving right.
fn good_npy(path: &Path) {
    let (t, h, w) = (8, 32, 32);
    let mut data = vec![20u8; t * 3 * h * w];
    for f in 0..t {
        for c in 0..3 {
            for y in 12..18 {
                for x in 2 + 3 * f..8 + 3 * f {
                    data[((f * 3 + c) * h + y) * w + x] = 230;
                }
            }
        }
    }
    npy(
        path,
        "{'descr': '|u1', 'fortran_order': False, 'shape': (8, 3, 32, 32), }",
        &data,
    );
}

/// LZW data (minimum code size 2, so 3-bit codes) for palette indices `pixels`, written with
/// a clear code before every pair so the code size never grows: valid, if not small.
fn lzw(pixels: &[u8]) -> Vec<u8> {
    let mut codes = Vec::new();
    for pair in pixels.chunks(2) {
        codes.push(4u32);
        codes.extend(pair.iter().map(|&p| u32::from(p)));
    }
    codes.push(5);
    let (mut bits, mut n, mut packed) = (0u32, 0, Vec::new());
    for code in codes {
        bits |= code << n;
        n += 3;
        while n >= 8 {
            packed.push(bits as u8);
            bits >>= 8;
            n -= 8;
        }
    }
    if n > 0 {
        packed.push(bits as u8);
    }
    let mut out = vec![2u8];
    for block in packed.chunks(255) {
        out.push(block.len() as u8);
        out.extend_from_slice(block);
    }
    out.push(0);
    out
}

/// An animated GIF: a `width × height` screen and `frames` images of 2×2 pixels wandering
/// over it, each shown 30 ms (about 24 bytes a frame).
fn wandering_gif(width: u16, height: u16, frames: usize) -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&width.to_le_bytes());
    gif.extend_from_slice(&height.to_le_bytes());
    // A global colour table of 4 entries.
    gif.extend_from_slice(&[0x81, 0, 0]);
    gif.extend_from_slice(&[0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 255, 0]);
    for i in 0..frames {
        let left = (i * 7 % (usize::from(width) - 2)) as u16;
        let top = (i * 3 % (usize::from(height) - 2)) as u16;
        // Graphic control: disposal "keep", 3 cs delay, no transparency.
        gif.extend_from_slice(&[0x21, 0xF9, 0x04, 0x04, 3, 0, 0, 0]);
        gif.push(0x2C);
        for v in [left, top, 2, 2] {
            gif.extend_from_slice(&v.to_le_bytes());
        }
        gif.push(0);
        gif.extend(lzw(&[1, 2, 3, 1]));
    }
    gif.push(0x3B);
    gif
}

/// The 35-byte bomb: a logical screen of 65535×65535 and one image of a single pixel.
fn gif_bomb() -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0, 0]);
    gif.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    gif.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]);
    gif.extend_from_slice(&[0x02, 0x02, 0x44, 0x01, 0x00, 0x3B]);
    assert_eq!(gif.len(), 35);
    gif
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

/// A folder of `frame_000.png`... 32×32 frames.
fn png_folder(dir: &Path, frames: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for f in 0..frames {
        image::RgbImage::from_fn(32, 32, |x, _| image::Rgb([(x * 8) as u8, f as u8 * 20, 60]))
            .save(dir.join(format!("frame_{f:03}.png")))
            .unwrap();
    }
}

/// What predict costs when it refuses a video by its name alone (`x.mp4`), after starting up
/// and loading the model: peak RSS in MB and seconds. libtorch's start alone is most of it
/// (hundreds of MB resident on a CUDA build, `trajhost --version` included), so memory is
/// judged as what reading a video adds to this.
fn baseline() -> (f64, f64) {
    static BASELINE: OnceLock<(f64, f64)> = OnceLock::new();
    *BASELINE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let m = predict(&run_dir(), &dir.path().join("x.mp4"), &[]);
        refused(&m, &["x.mp4"]);
        (m.peak_rss_mb, m.seconds)
    })
}

/// Fails unless `m` used at most `mb` MB more than [`baseline`] at its peak.
fn assert_adds_at_most(m: &Measured, mb: f64, what: &str) {
    let (base, _) = baseline();
    eprintln!(
        "{what}: {:.2} s, peak RSS {:.0} MB ({:+.0} MB over a refusal by name)",
        m.seconds,
        m.peak_rss_mb,
        m.peak_rss_mb - base
    );
    assert!(
        m.peak_rss_mb < base + mb,
        "{what}: peak RSS {:.0} MB, a refusal by name {base:.0} MB",
        m.peak_rss_mb
    );
}

// ---- the tests ----

#[test]
fn the_35_byte_gif_bomb_is_refused_at_once_in_little_memory() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_dir();
    let bomb = written(dir.path(), "bomb.gif", &gif_bomb());
    let m = predict(&run, &bomb, &[]);
    refused(&m, &["bomb.gif", "65535×65535", "at most 1024×1024"]);
    // Before the fix it asked for a 17 GB picture (13 GB resident before the OOM killer).
    assert_adds_at_most(&m, 50.0, "the GIF bomb");
    // Under a second besides starting up and loading the model, which a refusal by name run
    // right after measures (the machine may be busy with other tests).
    let by_name = predict(&run, &dir.path().join("x.mp4"), &[]);
    refused(&by_name, &["x.mp4"]);
    assert!(
        m.seconds < by_name.seconds + 1.0,
        "{} s, a refusal by name {} s",
        m.seconds,
        by_name.seconds
    );
}

#[test]
fn a_gif_of_2000_frames_is_read_keeping_only_the_last_frames() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_dir();
    let bytes = wandering_gif(320, 320, 2000);
    assert!(bytes.len() < 60_000, "{} bytes", bytes.len());
    let long = written(dir.path(), "long.gif", &bytes);
    let m = predict(&run, &long, &["--json"]);
    let printed = succeeded(&m);
    assert!(
        printed.contains("the video has 2000 frames; the model reads the last 8"),
        "{printed}"
    );
    assert!(printed.contains("resized from 320×320"), "{printed}");
    // Every frame kept would be 2000 × 320 × 320 × (4 + 3) bytes, 1.4 GB (it was 0.8 GB more
    // than the baseline before the fix); 8 frames and the decoder's pictures are a few MB.
    assert_adds_at_most(&m, 100.0, "a GIF of 2000 frames");
}

#[test]
fn npy_shapes_that_wrap_and_special_files_named_like_videos_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_dir();
    // (2^62 + 1) × 3 × 2 × 2 = 3 × 2^64 + 12: wraps to the 12 bytes the file holds.
    let wraps = dir.path().join("wraps.npy");
    npy(
        &wraps,
        "{'descr': '|u1', 'fortran_order': False, 'shape': (4611686018427387905, 3, 2, 2), }",
        &[7; 12],
    );
    refused(&predict(&run, &wraps, &[]), &["wraps.npy", "shape"]);
    // A header length past the end of the file, and one far past any header.
    let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    bytes.extend_from_slice(b"{'descr': '|u1'");
    let cut = written(dir.path(), "cut.npy", &bytes);
    refused(&predict(&run, &cut, &[]), &["cut.npy"]);

    for name in ["zero.npy", "zero.safetensors", "zero.gif"] {
        let link = dir.path().join(name);
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let m = predict(&run, &link, &[]);
        refused(&m, &[name, "not a regular file"]);
        assert_adds_at_most(&m, 50.0, name);
    }
    for name in ["pipe.gif", "pipe.npy"] {
        let fifo = dir.path().join(name);
        mkfifo(&fifo);
        refused(&predict(&run, &fifo, &[]), &[name, "not a regular file"]);
    }
    // A safetensors header claiming 2^63 bytes.
    let mut bytes = (1u64 << 63).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    let huge = written(dir.path(), "huge.safetensors", &bytes);
    refused(&predict(&run, &huge, &[]), &["huge.safetensors"]);
}

#[test]
fn a_png_folder_with_a_frame_of_another_size_or_a_fifo_is_refused_naming_the_frame() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_dir();
    let mixed = dir.path().join("mixed");
    png_folder(&mixed, 7);
    image::RgbImage::new(40, 40)
        .save(mixed.join("frame_007.png"))
        .unwrap();
    refused(
        &predict(&run, &mixed, &[]),
        &["frame_007.png", "40×40", "32×32"],
    );

    let piped = dir.path().join("piped");
    png_folder(&piped, 8);
    mkfifo(&piped.join("frame_008.png"));
    refused(
        &predict(&run, &piped, &[]),
        &["frame_008.png", "not a regular file"],
    );
    // Nothing else is wrong with that folder.
    std::fs::remove_file(piped.join("frame_008.png")).unwrap();
    succeeded(&predict(&run, &piped, &[]));
}

#[test]
fn an_overlay_that_is_not_a_gif_is_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_dir();
    let video = dir.path().join("clip.npy");
    good_npy(&video);
    let png = dir.path().join("out.png");
    refused(
        &predict(&run, &video, &["--overlay", png.to_str().unwrap()]),
        &["--overlay", "out.png", ".gif"],
    );
    assert!(!png.exists());
    let gif = dir.path().join("out.GIF");
    succeeded(&predict(
        &run,
        &video,
        &["--overlay", gif.to_str().unwrap()],
    ));
    assert!(std::fs::read(&gif).unwrap().starts_with(b"GIF89a"));
}

#[test]
fn an_impossible_recorded_clip_shape_is_refused_naming_the_checkpoint_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("clip.npy");
    good_npy(&video);
    for shape in [[16, 100_000, 100_000], [0, 0, 0], [8, 100_000, 100_000]] {
        let (_copy, run) = copy_of_run();
        edit_checkpoints(&run, |meta| meta["video_shape"] = serde_json::json!(shape));
        refused(
            &predict(&run, &video, &[]),
            &["checkpoints/epoch-0001.json", "video_shape"],
        );
    }
}

/// A shard's sample whose K would make every depth NaN or infinite (a principal point at 0, a
/// NaN focal length) is refused naming the file, the sample and its intrinsics; `--fov-deg`
/// still reads it through a lens of the user's choosing.
#[test]
fn a_shard_sample_whose_intrinsics_are_no_lens_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let shard = std::fs::read_dir(tiny_dataset())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .unwrap();
    let damaged = dir.path().join("damaged.safetensors");
    std::fs::copy(&shard, &damaged).unwrap();
    // Sample 1's K: fx NaN; sample 2's: cx 0.
    set_intrinsic(&damaged, 1, 0, f32::NAN);
    set_intrinsic(&damaged, 2, 2, 0.0);
    for sample in ["1", "2"] {
        let m = predict(&run_dir(), &damaged, &["--sample", sample]);
        refused(
            &m,
            &[
                "damaged.safetensors",
                &format!("sample {sample}"),
                "intrinsics",
            ],
        );
    }
    succeeded(&predict(
        &run_dir(),
        &damaged,
        &["--sample", "1", "--fov-deg", "50"],
    ));
}

#[test]
fn nan_outputs_are_refused_naming_the_plugin_and_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("clip.npy");
    good_npy(&video);
    let (_copy, run) = copy_of_run();
    // The classifier's weights become NaN, in place (the same size), and the recorded hashes
    // follow, so the checkpoint loads and the model answers NaN.
    let checkpoints = run.join("checkpoints");
    for entry in std::fs::read_dir(&checkpoints).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            let mut bytes = std::fs::read(&path).unwrap();
            let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
            let offsets = &header["heads.classifier.weight"]["data_offsets"];
            let (start, end) = (
                8 + n + offsets[0].as_u64().unwrap() as usize,
                8 + n + offsets[1].as_u64().unwrap() as usize,
            );
            for value in bytes[start..end].chunks_exact_mut(4) {
                value.copy_from_slice(&f32::NAN.to_le_bytes());
            }
            std::fs::write(&path, bytes).unwrap();
        }
    }
    edit_checkpoints(&run, |meta| {
        if meta.get("tensors_sha256").is_some() {
            let tensors = checkpoints.join(meta["tensors_file"].as_str().unwrap());
            let sha = trajhost_dataset::shard::sha256_hex(&std::fs::read(tensors).unwrap());
            meta["tensors_sha256"] = sha.into();
        }
    });
    let m = predict(&run, &video, &[]);
    refused(&m, &["template", "checkpoints/epoch-0001.json", "finite"]);
    assert!(
        !m.output.contains("class     "),
        "no prediction printed: {}",
        m.output
    );
}
