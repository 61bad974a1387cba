//! Where descriptors come from: `--proto` files (compiled in-process by protox),
//! `--protoset` files (an encoded FileDescriptorSet), or the server's reflection service,
//! asked file by file as symbols are needed.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use prost::Message;
use prost_reflect::DescriptorPool;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

use crate::args::Common;
use crate::failure::Failure;
use crate::reflection::Reflection;

/// At most this many files are taken from a server's reflection for one command: a
/// server naming ever new dependencies cannot keep the tool fetching.
pub const MAX_REFLECTED_FILES: usize = 4096;

/// The descriptors of one command.
pub enum Source {
    /// From --proto or --protoset: everything is known up front.
    Files(DescriptorPool),
    /// From the server, loaded as needed.
    Reflection {
        session: Box<Reflection>,
        pool: DescriptorPool,
        /// Files fetched but not yet added (their dependencies still missing).
        loaded: HashSet<String>,
    },
}

/// `Some(pool)` when the flags name descriptor files; `None` means: use reflection.
pub fn from_files(flags: &Common) -> Result<Option<DescriptorPool>, Failure> {
    if !flags.protos.is_empty() && !flags.protosets.is_empty() {
        return Err(Failure::Usage(
            "Use either --proto or --protoset, not both.".to_string(),
        ));
    }
    if !flags.import_paths.is_empty() && flags.protos.is_empty() {
        return Err(Failure::Usage(
            "--import-path is only used with --proto.".to_string(),
        ));
    }
    if !flags.protos.is_empty() {
        return compile(&flags.protos, &flags.import_paths).map(Some);
    }
    if !flags.protosets.is_empty() {
        let mut pool = DescriptorPool::new();
        for path in &flags.protosets {
            let bytes = std::fs::read(path).map_err(|e| {
                Failure::Other(format!("Failed to read --protoset {}: {e}", path.display()))
            })?;
            let set = FileDescriptorSet::decode(bytes.as_slice()).map_err(|e| {
                Failure::Other(format!(
                    "Failed to decode --protoset {}: not a FileDescriptorSet: {e}",
                    path.display()
                ))
            })?;
            pool.add_file_descriptor_set(set).map_err(|e| {
                Failure::Other(format!("Invalid descriptors in {}: {e}", path.display()))
            })?;
        }
        return Ok(Some(pool));
    }
    Ok(None)
}

/// protox over `protos`, found under `import_paths` (default: each file's directory).
fn compile(protos: &[PathBuf], import_paths: &[PathBuf]) -> Result<DescriptorPool, Failure> {
    let includes: Vec<PathBuf> = if import_paths.is_empty() {
        let mut dirs = Vec::new();
        for p in protos {
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf();
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        dirs
    } else {
        import_paths.to_vec()
    };
    let set = protox::compile(protos, &includes)
        .map_err(|e| Failure::Other(format!("Failed to process proto source files: {e}")))?;
    DescriptorPool::from_file_descriptor_set(set)
        .map_err(|e| Failure::Other(format!("Invalid descriptors from --proto: {e}")))
}

impl Source {
    /// Reflection over an open session.
    pub fn reflection(session: Reflection) -> Source {
        Source::Reflection {
            session: Box::new(session),
            pool: DescriptorPool::new(),
            loaded: HashSet::new(),
        }
    }

    /// The services, sorted by name. Reflection lists what the server says it serves.
    pub async fn list_services(&mut self) -> Result<Vec<String>, Failure> {
        let mut names = match self {
            Source::Files(pool) => pool.services().map(|s| s.full_name().to_string()).collect(),
            Source::Reflection { session, .. } => session
                .list_services()
                .await
                .map_err(|e| Failure::Other(format!("Failed to list services: {}", e.report())))?,
        };
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The pool, holding `symbol`'s file and its dependencies when reflection finds it.
    pub async fn pool_with(&mut self, symbol: &str) -> Result<&DescriptorPool, Failure> {
        match self {
            Source::Files(pool) => Ok(pool),
            Source::Reflection {
                session,
                pool,
                loaded,
            } => {
                // Some servers (grpcio) find only top-level symbols: a method or a field is
                // looked up through its service or message.
                let mut name = symbol;
                while !has_symbol(pool, symbol) {
                    match session.file_containing_symbol(name).await {
                        Ok(files) => {
                            load(session, pool, loaded, files).await?;
                            break;
                        }
                        Err(Failure::NotFound(why)) => match name.rsplit_once('.') {
                            Some((parent, _)) => name = parent,
                            None => return Err(Failure::NotFound(why)),
                        },
                        Err(other) => return Err(other),
                    }
                }
                Ok(pool)
            }
        }
    }
}

/// Adds `files` and, fetched by name, every dependency not yet known.
async fn load(
    session: &mut Reflection,
    pool: &mut DescriptorPool,
    loaded: &mut HashSet<String>,
    files: Vec<FileDescriptorProto>,
) -> Result<(), Failure> {
    let mut pending: HashMap<String, FileDescriptorProto> = HashMap::new();
    let mut queue = files;
    while let Some(file) = queue.pop() {
        let name = file.name().to_string();
        if loaded.contains(&name) || pending.contains_key(&name) {
            continue;
        }
        if loaded.len() + pending.len() >= MAX_REFLECTED_FILES {
            return Err(Failure::Other(format!(
                "reflection: more than {MAX_REFLECTED_FILES} files for one command; giving up"
            )));
        }
        for dep in &file.dependency {
            if !loaded.contains(dep)
                && !pending.contains_key(dep)
                && !queue.iter().any(|f| f.name() == dep)
            {
                queue.extend(session.file_by_filename(dep).await?);
            }
        }
        pending.insert(name, file);
    }
    let names: Vec<String> = pending.keys().cloned().collect();
    pool.add_file_descriptor_protos(pending.into_values())
        .map_err(|e| Failure::Other(format!("Invalid descriptors from reflection: {e}")))?;
    loaded.extend(names);
    Ok(())
}

/// True when the pool defines `symbol` (any kind, methods, fields and values included).
fn has_symbol(pool: &DescriptorPool, symbol: &str) -> bool {
    if pool.get_service_by_name(symbol).is_some()
        || pool.get_message_by_name(symbol).is_some()
        || pool.get_enum_by_name(symbol).is_some()
        || pool.get_extension_by_name(symbol).is_some()
    {
        return true;
    }
    let Some((parent, child)) = symbol.rsplit_once('.') else {
        return false;
    };
    pool.get_service_by_name(parent)
        .is_some_and(|s| s.methods().any(|m| m.name() == child))
        || pool
            .get_message_by_name(parent)
            .is_some_and(|m| m.get_field_by_name(child).is_some())
        || pool
            .get_enum_by_name(parent)
            .is_some_and(|e| e.get_value_by_name(child).is_some())
}
