//! Is a plugin file a whole ELF shared library for this machine? Checked before `dlopen`,
//! which maps the file's segments without looking at its size (a truncated copy then dies of
//! SIGBUS on first touch) and reports a foreign architecture as "No such file or directory".

use anyhow::{anyhow, bail, Context, Result};
use object::elf::{self, FileHeader64, Machine};
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader, Sym};
use object::{Endianness, ReadCache};
use std::io::Read;
use std::path::Path;
use trajhost_plugin_api::stamp::STAMP_SYMBOL;

/// The ELF `e_machine` of the architecture this host was built for.
const HOST_MACHINE: Option<Machine> = if cfg!(target_arch = "x86_64") {
    Some(elf::EM_X86_64)
} else if cfg!(target_arch = "aarch64") {
    Some(elf::EM_AARCH64)
} else if cfg!(target_arch = "riscv64") {
    Some(elf::EM_RISCV)
} else if cfg!(target_arch = "powerpc64") {
    Some(elf::EM_PPC64)
} else if cfg!(target_arch = "s390x") {
    Some(elf::EM_S390)
} else if cfg!(target_arch = "loongarch64") {
    Some(elf::EM_LOONGARCH)
} else {
    None
};

/// `e_ident`: its length and where the class and the data encoding sit.
const IDENT_LEN: usize = 16;
const IDENT_CLASS: usize = 4;
const IDENT_DATA: usize = 5;

/// What to do about a damaged file.
const DAMAGED: &str =
    "copy it again, or rebuild it with scripts/build (an interrupted copy leaves such a file)";

/// The name an architecture goes by (`uname -m`), or the ELF constant's.
fn machine_name(machine: Machine) -> String {
    let name = match machine {
        elf::EM_X86_64 => "x86_64",
        elf::EM_AARCH64 => "aarch64",
        elf::EM_386 => "x86 (32-bit)",
        elf::EM_ARM => "arm (32-bit)",
        elf::EM_RISCV => "riscv",
        elf::EM_PPC64 => "powerpc64",
        elf::EM_S390 => "s390x",
        elf::EM_LOONGARCH => "loongarch64",
        elf::EM_MIPS => "mips",
        other => return other.name().unwrap_or("an unknown architecture").into(),
    };
    name.into()
}

/// Refuses, naming the file and why, anything `dlopen` would crash on or misreport: not ELF,
/// not 64-bit, the other byte order, another architecture, not a shared library, or headers,
/// segments or sections that reach past the end of the file.
pub fn check_shared_library(path: &Path) -> Result<()> {
    let shown = path.display();
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {shown}"))?;
    let len = file
        .metadata()
        .with_context(|| format!("cannot read {shown}"))?
        .len();
    let mut ident = Vec::with_capacity(IDENT_LEN);
    (&mut file)
        .take(IDENT_LEN as u64)
        .read_to_end(&mut ident)
        .with_context(|| format!("cannot read {shown}"))?;
    if !ident.starts_with(&elf::ELFMAG) {
        bail!("{shown} is not a trajhost plugin: not an ELF shared library (it does not start with the ELF magic \\x7fELF; {len} bytes)");
    }
    if ident.len() < IDENT_LEN {
        bail!("{shown} is truncated: only {len} bytes, less than an ELF header; {DAMAGED}");
    }
    match elf::FileClass(ident[IDENT_CLASS]) {
        elf::ELFCLASS64 => {}
        elf::ELFCLASS32 => bail!(
            "{shown} is a 32-bit ELF library; this host is 64-bit ({}): build the plugin for this machine",
            std::env::consts::ARCH
        ),
        other => bail!("{shown} is damaged: unknown ELF class {other}; {DAMAGED}"),
    }
    let host_data = if cfg!(target_endian = "little") {
        elf::ELFDATA2LSB
    } else {
        elf::ELFDATA2MSB
    };
    if elf::DataEncoding(ident[IDENT_DATA]) != host_data {
        bail!(
            "{shown} has the other byte order (ELF data encoding {}) than this host ({}): build the plugin for this machine",
            ident[IDENT_DATA],
            std::env::consts::ARCH
        );
    }

    let data = ReadCache::new(file);
    let data = &data;
    let damaged = |what: &str, e: object::Error| {
        anyhow!("{shown} is truncated or damaged: its {what} ({e}) lie outside the file ({len} bytes); {DAMAGED}")
    };
    let header = FileHeader64::<Endianness>::parse(data).map_err(|e| damaged("ELF header", e))?;
    let endian = header
        .endian()
        .map_err(|e| anyhow!("{shown} is damaged: {e}; {DAMAGED}"))?;
    let machine = header.e_machine(endian);
    if let Some(host) = HOST_MACHINE {
        if machine != host {
            bail!(
                "{shown} is built for {} (ELF e_machine {machine}), but this host is {} (e_machine {host}): build the plugin for this machine",
                machine_name(machine),
                std::env::consts::ARCH,
            );
        }
    }
    let kind = header.e_type(endian);
    if kind != elf::ET_DYN {
        bail!("{shown} is not a shared library (ELF type {kind}, a shared library is {}): build the plugin as a cdylib", elf::ET_DYN);
    }
    let segments = header
        .program_headers(endian, data)
        .map_err(|e| damaged("program headers", e))?;
    for (i, segment) in segments.iter().enumerate() {
        let (offset, size) = segment.file_range(endian);
        if offset.checked_add(size).is_none_or(|end| end > len) {
            bail!(
                "{shown} is truncated or damaged: segment {i} (bytes {offset}+{size}) reaches past the end of the file ({len} bytes); {DAMAGED}"
            );
        }
    }
    let sections = header
        .section_headers(endian, data)
        .map_err(|e| damaged("section headers", e))?;
    for (i, section) in sections.iter().enumerate() {
        if let Some((offset, size)) = section.file_range(endian) {
            if offset.checked_add(size).is_none_or(|end| end > len) {
                bail!(
                    "{shown} is truncated or damaged: section {i} (bytes {offset}+{size}) reaches past the end of the file ({len} bytes); {DAMAGED}"
                );
            }
        }
    }
    // The stamp is called before anything else: a symbol of that name that is data, not code,
    // would be jumped into (SIGSEGV).
    let symbols = header
        .sections(endian, data)
        .and_then(|table| table.symbols(endian, data, elf::SHT_DYNSYM))
        .map_err(|e| damaged("dynamic symbols", e))?;
    let found = symbols
        .iter()
        .find(|s| symbols.symbol_name(endian, *s).ok() == Some(STAMP_SYMBOL));
    match found {
        None => bail!("{shown} is not a trajhost plugin: it exports no `trajhost_plugin_stamp` (register the backbone with `export_backbone!`)"),
        Some(symbol) if symbol.st_type() != elf::STT_FUNC || symbol.st_shndx(endian) == elf::SHN_UNDEF => bail!(
            "{shown} is not a trajhost plugin: its `trajhost_plugin_stamp` is not a function it defines (ELF symbol type {})",
            symbol.st_type()
        ),
        Some(_) => Ok(()),
    }
}
