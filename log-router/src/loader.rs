//! Loading sink plugins: name resolution, ELF check, `dlopen`, ABI version check.
//!
//! Rules: a sink is a built-in name (`file`, `rotating`, `tcp`), resolved to
//! `libengine_sink_<name>.so` in `ENGINE_LIBEXEC_DIR` or the router's own directory, or an
//! absolute path. `abi_version` and `struct_size` are read before anything else of the entry is
//! used, and a library is never unloaded (its handle is leaked on purpose, so function pointers
//! and contexts stay valid for the life of the process).

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use sink_abi::ffi::{
    CreateFn, DestroyFn, EngineSinkEntry, EntryFn, FlushFn, ValidateFn, WriteBatchFn, WriteFn,
    ENGINE_SINK_ABI_VERSION, ENGINE_SINK_ENTRY_MIN_SIZE, ENGINE_SINK_ENTRY_SYMBOL,
};
use std::collections::HashMap;
use std::ffi::CStr;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Sink names resolved inside the libexec directory.
pub const BUILTIN_SINKS: [&str; 3] = ["file", "rotating", "tcp"];

/// Environment variable overriding where built-in sinks are looked up.
pub const LIBEXEC_ENV: &str = "ENGINE_LIBEXEC_DIR";

/// Why a sink library cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A path that is not absolute.
    #[error("sink path `{0}` is not absolute (give a built-in name: file, rotating, tcp, or an absolute path)")]
    Relative(String),
    /// Neither a built-in name nor a path.
    #[error(
        "unknown sink `{0}` (built-in sinks: file, rotating, tcp; or an absolute path to a .so)"
    )]
    Unknown(String),
    /// A built-in whose library is missing from every searched directory.
    #[error("built-in sink `{name}` not found (looked for {looked})")]
    BuiltinMissing {
        /// Sink name.
        name: String,
        /// Paths tried.
        looked: String,
    },
    /// The file cannot be read.
    #[error("cannot read sink {path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Not an ELF shared object.
    #[error("sink {path} is not a shared object ({why})")]
    NotSharedObject {
        /// Path.
        path: PathBuf,
        /// What is wrong.
        why: &'static str,
    },
    /// `dlopen` failed.
    #[error("cannot load sink {path}: {message}")]
    Dlopen {
        /// Path.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// The entry symbol is absent.
    #[error("sink {path} does not export `{ENGINE_SINK_ENTRY_SYMBOL}`")]
    MissingSymbol {
        /// Path.
        path: PathBuf,
    },
    /// The entry function returned NULL.
    #[error("sink {path}: `{ENGINE_SINK_ENTRY_SYMBOL}` returned NULL")]
    NullEntry {
        /// Path.
        path: PathBuf,
    },
    /// An ABI version this router does not speak.
    #[error("sink {path} uses sink ABI version {found}; this router supports version {ENGINE_SINK_ABI_VERSION}")]
    Version {
        /// Path.
        path: PathBuf,
        /// The version the sink declares.
        found: u32,
    },
    /// The entry is shorter than version 1 requires.
    #[error("sink {path}: entry struct_size {found} is smaller than the {needed} bytes ABI version 1 requires")]
    StructSize {
        /// Path.
        path: PathBuf,
        /// Declared size, in bytes.
        found: u32,
        /// Required size, in bytes.
        needed: usize,
    },
    /// A required function pointer is NULL.
    #[error("sink {path}: entry has no `{function}` function")]
    MissingFunction {
        /// Path.
        path: PathBuf,
        /// Field name.
        function: &'static str,
    },
}

/// A loaded, version-checked sink library. Lives for the rest of the process.
#[derive(Debug)]
pub struct LoadedSink {
    /// Where it was loaded from.
    pub path: PathBuf,
    /// The name the sink gives itself.
    pub name: String,
    pub(crate) validate: Option<ValidateFn>,
    pub(crate) create: CreateFn,
    pub(crate) write: WriteFn,
    pub(crate) flush: FlushFn,
    pub(crate) destroy: DestroyFn,
    pub(crate) write_batch: Option<WriteBatchFn>,
}

/// Resolves a sink name or path to the library file to load.
///
/// `dirs` are searched in order for built-ins (see [`libexec_dirs`]).
///
/// # Errors
/// [`LoadError::Relative`], [`LoadError::Unknown`], [`LoadError::BuiltinMissing`].
pub fn resolve(sink: &str, dirs: &[PathBuf]) -> Result<PathBuf, LoadError> {
    if sink.starts_with('/') {
        return Ok(PathBuf::from(sink));
    }
    if sink.contains('/') || sink.ends_with(".so") {
        return Err(LoadError::Relative(sink.to_string()));
    }
    if !BUILTIN_SINKS.contains(&sink) {
        return Err(LoadError::Unknown(sink.to_string()));
    }
    let file = format!("libengine_sink_{sink}.so");
    let candidates: Vec<PathBuf> = dirs.iter().map(|d| d.join(&file)).collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| LoadError::BuiltinMissing {
            name: sink.to_string(),
            looked: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Directories searched for built-in sinks: `ENGINE_LIBEXEC_DIR` if set, then the directory of
/// the running executable.
pub fn libexec_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os(LIBEXEC_ENV).filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(d));
    }
    if let Some(d) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        dirs.push(d);
    }
    dirs
}

/// Checks the ELF header: magic and `e_type == ET_DYN`.
fn check_elf(path: &Path) -> Result<(), LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    if !f.metadata().map_err(io)?.is_file() {
        return Err(LoadError::NotSharedObject {
            path: path.to_path_buf(),
            why: "not a regular file",
        });
    }
    let mut head = [0u8; 18];
    let n = f.read(&mut head).map_err(io)?;
    let bad = |why| LoadError::NotSharedObject {
        path: path.to_path_buf(),
        why,
    };
    if n < head.len() || &head[..4] != b"\x7fELF" {
        return Err(bad("no ELF header"));
    }
    let e_type = if head[5] == 2 {
        u16::from_be_bytes([head[16], head[17]])
    } else {
        u16::from_le_bytes([head[16], head[17]])
    };
    if e_type != 3 {
        return Err(bad("ELF file is not of type ET_DYN"));
    }
    Ok(())
}

/// Loads and checks one library.
fn load(path: &Path) -> Result<LoadedSink, LoadError> {
    check_elf(path)?;
    // SAFETY: loading runs the library's initialisers; that is the accepted risk of a plugin.
    // RTLD_NOW reports unresolved symbols here rather than at the first call.
    let lib = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }.map_err(|e| {
        LoadError::Dlopen {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    })?;
    // Never unloaded: contexts and function pointers must outlive every caller.
    let lib: &'static Library = Box::leak(Box::new(lib));
    let symbol = format!("{ENGINE_SINK_ENTRY_SYMBOL}\0");
    // SAFETY: the ABI defines the symbol as `const engine_sink_entry *(void)`.
    let entry_fn: EntryFn = *unsafe { lib.get::<EntryFn>(symbol.as_bytes()) }.map_err(|_| {
        LoadError::MissingSymbol {
            path: path.to_path_buf(),
        }
    })?;
    // SAFETY: calling the exported entry function is the first step of the ABI.
    let entry = unsafe { entry_fn() };
    if entry.is_null() {
        return Err(LoadError::NullEntry {
            path: path.to_path_buf(),
        });
    }
    // SAFETY: every version of the entry starts with these two u32 fields; nothing else is read
    // before they are checked.
    let (version, size) = unsafe {
        (
            std::ptr::addr_of!((*entry).abi_version).read(),
            std::ptr::addr_of!((*entry).struct_size).read(),
        )
    };
    if version != ENGINE_SINK_ABI_VERSION {
        return Err(LoadError::Version {
            path: path.to_path_buf(),
            found: version,
        });
    }
    let needed = ENGINE_SINK_ENTRY_MIN_SIZE;
    if (size as usize) < needed {
        return Err(LoadError::StructSize {
            path: path.to_path_buf(),
            found: size,
            needed,
        });
    }
    // SAFETY: version and size checked: the sink provides at least the fields before
    // `write_batch`, static; `write_batch` is read only when `struct_size` covers it.
    let e: &'static EngineSinkEntry = unsafe { &*entry };
    let write_batch = if size as usize >= std::mem::size_of::<EngineSinkEntry>() {
        e.write_batch
    } else {
        None
    };
    let missing = |function| LoadError::MissingFunction {
        path: path.to_path_buf(),
        function,
    };
    let name = if e.name.is_null() {
        path.display().to_string()
    } else {
        // SAFETY: the ABI requires a static NUL-terminated string.
        unsafe { CStr::from_ptr(e.name) }
            .to_string_lossy()
            .into_owned()
    };
    Ok(LoadedSink {
        path: path.to_path_buf(),
        name,
        validate: e.validate,
        create: e.create.ok_or_else(|| missing("create"))?,
        write: e.write.ok_or_else(|| missing("write"))?,
        flush: e.flush.ok_or_else(|| missing("flush"))?,
        destroy: e.destroy.ok_or_else(|| missing("destroy"))?,
        write_batch,
    })
}

/// Loaded libraries by path; each is loaded at most once.
#[derive(Debug, Default)]
pub struct SinkCatalog {
    loaded: HashMap<PathBuf, &'static LoadedSink>,
    dirs: Vec<PathBuf>,
}

impl SinkCatalog {
    /// A catalog resolving built-ins in `dirs`.
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        Self {
            loaded: HashMap::new(),
            dirs,
        }
    }

    /// Resolves and loads `sink` (a built-in name or absolute path).
    ///
    /// # Errors
    /// Any [`LoadError`].
    pub fn get(&mut self, sink: &str) -> Result<&'static LoadedSink, LoadError> {
        let path = resolve(sink, &self.dirs)?;
        if let Some(s) = self.loaded.get(&path) {
            return Ok(s);
        }
        let s: &'static LoadedSink = Box::leak(Box::new(load(&path)?));
        tracing::info!(sink = %s.name, path = %path.display(), "sink loaded");
        self.loaded.insert(path, s);
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_rules() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = vec![dir.path().to_path_buf()];
        assert!(matches!(
            resolve("custom.so", &dirs),
            Err(LoadError::Relative(_))
        ));
        assert!(matches!(
            resolve("./x.so", &dirs),
            Err(LoadError::Relative(_))
        ));
        assert!(matches!(
            resolve("syslog", &dirs),
            Err(LoadError::Unknown(_))
        ));
        let e = resolve("file", &dirs).unwrap_err();
        assert!(e.to_string().contains("libengine_sink_file.so"), "{e}");
        std::fs::write(dir.path().join("libengine_sink_file.so"), b"").unwrap();
        assert_eq!(
            resolve("file", &dirs).unwrap(),
            dir.path().join("libengine_sink_file.so")
        );
        assert_eq!(resolve("/a/b.so", &dirs).unwrap(), PathBuf::from("/a/b.so"));
    }

    #[test]
    fn non_shared_objects_are_refused_before_dlopen() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("text.so");
        std::fs::write(&text, b"#!/bin/sh\necho hi\n").unwrap();
        let mut r = SinkCatalog::new(vec![]);
        let e = r.get(text.to_str().unwrap()).unwrap_err();
        assert!(matches!(e, LoadError::NotSharedObject { .. }), "{e}");
        let e = r.get("/nonexistent/x.so").unwrap_err();
        assert!(matches!(e, LoadError::Io { .. }), "{e}");
        // An executable that is not ET_DYN, or a PIE that dlopen refuses: either way an error.
        let e = r.get("/bin/true").unwrap_err();
        assert!(
            matches!(
                e,
                LoadError::NotSharedObject { .. }
                    | LoadError::Dlopen { .. }
                    | LoadError::MissingSymbol { .. }
            ),
            "{e}"
        );
    }

    #[test]
    fn a_library_without_the_entry_symbol_is_refused() {
        let libc = [
            "/lib/x86_64-linux-gnu/libm.so.6",
            "/usr/lib/x86_64-linux-gnu/libm.so.6",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists());
        let Some(libm) = libc else { return };
        let e = SinkCatalog::new(vec![]).get(libm).unwrap_err();
        assert!(matches!(e, LoadError::MissingSymbol { .. }), "{e}");
    }
}
