//! A small stand-in for the kernel's BTF, holding exactly what aya consults when it loads our
//! iterator, so that aya parses a few hundred types instead of all of the kernel's.
//!
//! aya (0.14) wants the target BTF as a parsed [`aya::Btf`] for two things only:
//! - CO-RE field relocations (`aya-obj`'s `relocate_btf`): for each relocated local struct it
//!   takes every target STRUCT/UNION of the same (flavorless) name as a candidate, matches the
//!   accessed members by name (recursing into nameless members), checks that the local and
//!   target member types are compatible (composite with composite, any pointer with any
//!   pointer, integers at bit 0, enums and forwards by name, arrays by element) and reads the
//!   member's bit offset, bitfield size and the byte size of its type;
//! - the iterator's attach point (`Iter::load`): the id of the FUNC `bpf_iter_<name>`, which
//!   is handed to the kernel and so must be the kernel's own id.
//!
//! Parsing the whole kernel BTF for that costs about 16 ms of CPU and 15 MiB (some 130 000
//! types), so [`digest`] reads the raw BTF once and writes two small ones, one per use (each
//! use takes its own `&Btf`):
//! - [`Digest::relocations`]: every STRUCT/UNION named like one of the wanted structs, with
//!   all their members, but with *shallow* member types: typedefs and qualifiers are resolved
//!   away (every consumer above resolves them anyway); integers, floats, enums (without their
//!   variants) and forwards are copied; every pointer becomes one `void *` (only "is a
//!   pointer" and its size are read); arrays keep their length over a shallow element; other
//!   named structs and unions become empty ones of the same kind, name and size; nameless
//!   ones, and the types of nameless members, are kept with their members, since the member
//!   search goes through them. A few hundred types: the candidate search, which walks every
//!   type once per relocated struct, is short too.
//! - [`Digest::attach`]: the FUNC at exactly its kernel id, after an empty prototype and
//!   nameless `void *` placeholders (12 bytes each, and skipped by the lookup by name and
//!   kind). aya keeps types in a vector indexed by id, so the ids below cannot be left out.
//!
//! Anything unexpected (malformed data, a wanted struct or the function missing) is an error:
//! the caller then parses the full BTF, as aya would, so a digest problem costs time, never
//! correctness.

use std::collections::{HashMap, HashSet};
use std::ffi::CStr;

use crate::process::bpf::raw_btf::kinds::*;
use crate::process::bpf::raw_btf::{
    HEADER_LEN, HeaderError, MAGIC, TYPE_LEN, VERSION, VLEN_MASK, extra_len, fixed_part, kind,
    read_u32, sections,
};

/// How many typedefs, qualifiers or nesting levels are followed before giving up: aya's own
/// limit (`MAX_RESOLVE_DEPTH`); deeper chains in real BTF do not exist, and in crafted data
/// they would otherwise recurse without bound.
const MAX_DEPTH: usize = 32;

/// Why no digest could be made: the caller falls back to parsing the full BTF.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The data does not start with a BTF header in this machine's byte order.
    #[error("not BTF in native byte order (magic {0:#06x})")]
    Magic(u16),
    /// A BTF version this module does not know.
    #[error("unsupported BTF version {0}")]
    Version(u8),
    /// The header is short, or its sections lie outside the data.
    #[error("truncated BTF header or a section outside the data")]
    Header,
    /// A type runs past the end of the type section.
    #[error("type {id} is truncated")]
    Truncated {
        /// The id the type would have.
        id: u32,
    },
    /// A type of a kind this module does not know.
    #[error("type {id} has unknown kind {kind}")]
    UnknownKind {
        /// The type's id.
        id: u32,
        /// Its kind number.
        kind: u32,
    },
    /// A kind that cannot appear where it does (a function as a struct member, say).
    #[error("type {id} of kind {kind} where a data type was expected")]
    UnexpectedKind {
        /// The type's id.
        id: u32,
        /// Its kind number.
        kind: u32,
    },
    /// A reference to a type id past the last type.
    #[error("reference to type {0}, which does not exist")]
    NoSuchType(u32),
    /// A name offset outside the string section, or a name without its terminating NUL.
    #[error("bad string offset {0}")]
    String(u32),
    /// A chain of typedefs, qualifiers or nested types too deep to be real (or a cycle).
    #[error("type {0} nests too deeply")]
    TooDeep(u32),
    /// No STRUCT or UNION has a wanted name.
    #[error("no struct or union named {0}")]
    MissingStruct(String),
    /// No FUNC has the wanted name.
    #[error("no function named {0}")]
    MissingFunc(String),
}

impl From<HeaderError> for DigestError {
    fn from(error: HeaderError) -> Self {
        match error {
            HeaderError::Magic(magic) => DigestError::Magic(magic),
            HeaderError::Version(version) => DigestError::Version(version),
            HeaderError::Header => DigestError::Header,
        }
    }
}

/// The two small BTFs made from the kernel's, each to be parsed with [`aya::Btf::parse`]
/// (native byte order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// For the loader (`EbpfLoader::btf`): the wanted structs, for field relocations.
    pub relocations: Vec<u8>,
    /// For the program's `load`: the function, at its kernel id.
    pub attach: Vec<u8>,
}

/// Digest the raw BTF `raw` (native byte order) for a program that relocates fields of the
/// structs named in `structs` and attaches to the FUNC named `func`.
///
/// Every struct or union through which a relocated access goes must be named in `structs`,
/// including one embedded by value and accessed through (`a.b.c`): other named structs are
/// kept empty.
pub fn digest(raw: &[u8], structs: &[&str], func: &str) -> Result<Digest, DigestError> {
    let source = Source::parse(raw, structs, func)?;
    every_struct_found(&source, structs)?;
    let func_id = source
        .func
        .ok_or_else(|| DigestError::MissingFunc(func.to_owned()))?;
    let func_type = source.ty(func_id)?;

    Ok(Digest {
        relocations: relocations_of(&source)?,
        attach: attach_btf(func_id, source.name(func_type.name)?, func_type.info)?,
    })
}

/// [`Digest::relocations`] alone: the digest of the structs named in `structs`, for a loader
/// that finds the attach point by itself (`loader::attach_id`).
pub fn relocations(raw: &[u8], structs: &[&str]) -> Result<Vec<u8>, DigestError> {
    let source = Source::parse(raw, structs, "")?;
    every_struct_found(&source, structs)?;
    relocations_of(&source)
}

/// An error naming the first of `structs` that `source` has no STRUCT or UNION of.
fn every_struct_found(source: &Source<'_>, structs: &[&str]) -> Result<(), DigestError> {
    match structs
        .iter()
        .find(|name| !source.roots.iter().any(|&(_, root)| root == **name))
    {
        Some(missing) => Err(DigestError::MissingStruct((*missing).to_owned())),
        None => Ok(()),
    }
}

/// The relocation digest of `source`'s wanted structs.
fn relocations_of(source: &Source<'_>) -> Result<Vec<u8>, DigestError> {
    let mut builder = Builder::new(source);
    for &(id, _) in &source.roots {
        builder.expand(id, 0)?;
    }
    builder.finish()
}

/// A BTF whose type `func_id` is a FUNC named `name` (with the source's `info`, which holds
/// its linkage): an empty prototype at id 1, `void *` placeholders up to it.
fn attach_btf(func_id: u32, name: &[u8], info: u32) -> Result<Vec<u8>, DigestError> {
    let mut strings = Vec::with_capacity(name.len() + 2);
    strings.push(0);
    strings.extend_from_slice(name);
    strings.push(0);
    let count = func_id as usize;
    let mut btf = BtfWriter::new(count * TYPE_LEN, &strings)?;
    // Type 1 (unless the function is type 1 itself): `void (void)`, the function's type.
    let proto = if func_id > 1 {
        btf.put(&[0, FUNC_PROTO << 24, 0]);
        1
    } else {
        0
    };
    for _ in 2..func_id {
        btf.put(&[0, PTR << 24, 0]);
    }
    btf.put(&[1, info, proto]);
    Ok(btf.finish(&strings))
}

/// Writes a BTF: header, then types word by word, then strings.
struct BtfWriter {
    out: Vec<u8>,
}

impl BtfWriter {
    /// A BTF with `type_len` bytes of types (to be `put`) and the string section `strings`.
    fn new(type_len: usize, strings: &[u8]) -> Result<BtfWriter, DigestError> {
        let (Ok(types), Ok(str_len)) = (u32::try_from(type_len), u32::try_from(strings.len()))
        else {
            return Err(DigestError::Header);
        };
        let mut out = Vec::with_capacity(HEADER_LEN + type_len + strings.len());
        out.extend_from_slice(&MAGIC.to_ne_bytes());
        out.extend_from_slice(&[VERSION, 0]);
        for word in [HEADER_LEN as u32, 0, types, types, str_len] {
            out.extend_from_slice(&word.to_ne_bytes());
        }
        Ok(BtfWriter { out })
    }

    fn put(&mut self, words: &[u32]) {
        for word in words {
            self.out.extend_from_slice(&word.to_ne_bytes());
        }
    }

    fn finish(mut self, strings: &[u8]) -> Vec<u8> {
        self.out.extend_from_slice(strings);
        self.out
    }
}

/// A view of raw BTF: its sections and where each type starts.
struct Source<'a> {
    /// The type section.
    types: &'a [u8],
    /// The string section.
    strings: &'a [u8],
    /// Start of type `id` in `types` at index `id - 1` (id 0 is `void`, not stored).
    offsets: Vec<u32>,
    /// The STRUCTs and UNIONs with a wanted name, in id order, with the name they matched.
    roots: Vec<(u32, &'a str)>,
    /// The first FUNC with the wanted name.
    func: Option<u32>,
}

/// One type as stored: the fixed part and the kind-specific data after it.
#[derive(Debug, Clone, Copy)]
struct RawType<'a> {
    name: u32,
    info: u32,
    size_or_type: u32,
    extra: &'a [u8],
}

impl RawType<'_> {
    fn kind(&self) -> u32 {
        kind(self.info)
    }

    fn vlen(&self) -> usize {
        (self.info & VLEN_MASK) as usize
    }

    /// The `index`th 32-bit word of the kind-specific data.
    fn word(&self, index: usize) -> u32 {
        // In bounds for every kind by construction (`extra_len`); 0 keeps a mistake harmless.
        read_u32(self.extra, index * 4).unwrap_or(0)
    }

    /// The kind-specific data as records of `words` 32-bit words (members, params...).
    fn records(&self, words: usize) -> impl Iterator<Item = &[u8]> {
        self.extra.chunks_exact(words * 4)
    }
}

impl<'a> Source<'a> {
    /// Check the header and every type's extent, and find the wanted structs and function.
    fn parse(raw: &'a [u8], structs: &[&'a str], func: &str) -> Result<Self, DigestError> {
        let (types, strings) = sections(raw)?;

        let mut source = Source {
            types,
            strings,
            // The kernel's types average 25 bytes: room for all without growing.
            offsets: Vec::with_capacity(types.len() / 20),
            roots: Vec::new(),
            func: None,
        };
        // Names are only compared where their first byte matches one wanted: most are
        // never read (the strings are 2 MiB, and every read is likely a cache miss).
        let mut struct_initials = [false; 256];
        for name in structs {
            if let Some(&first) = name.as_bytes().first() {
                struct_initials[usize::from(first)] = true;
            }
        }
        let func_initial = func.as_bytes().first().copied();
        let mut at = 0;
        while at < types.len() {
            let id = u32::try_from(source.offsets.len() + 1).map_err(|_| DigestError::Header)?;
            let [name, info, _] = fixed_part(types, at).ok_or(DigestError::Truncated { id })?;
            let kind = kind(info);
            let extra = extra_len(kind, (info & VLEN_MASK) as usize)
                .ok_or(DigestError::UnknownKind { id, kind })?;
            let initial = strings.get(name as usize).copied();
            match kind {
                STRUCT | UNION if initial.is_some_and(|b| struct_initials[usize::from(b)]) => {
                    if let Some(&wanted) = structs.iter().find(|s| source.name_is(name, s, true)) {
                        source.roots.push((id, wanted));
                    }
                }
                FUNC if source.func.is_none()
                    && initial == func_initial
                    && source.name_is(name, func, false) =>
                {
                    source.func = Some(id);
                }
                _ => {}
            }
            source.offsets.push(at as u32);
            at += TYPE_LEN + extra;
        }
        // The last type's kind-specific data must be there too.
        if at > types.len() {
            let id = source.offsets.len() as u32;
            return Err(DigestError::Truncated { id });
        }
        Ok(source)
    }

    /// Whether the string at `offset` is `name` (or, with `flavored`, `name___anything`, which
    /// aya takes for the same type).
    fn name_is(&self, offset: u32, name: &str, flavored: bool) -> bool {
        let Some(rest) = self
            .strings
            .get(offset as usize..)
            .and_then(|s| s.strip_prefix(name.as_bytes()))
        else {
            return false;
        };
        // An empty wanted name must not match every name: the source's names are never empty.
        !name.is_empty() && (rest.first() == Some(&0) || (flavored && rest.starts_with(b"___")))
    }

    /// The name at `offset`, without its NUL.
    fn name(&self, offset: u32) -> Result<&'a [u8], DigestError> {
        self.strings
            .get(offset as usize..)
            .and_then(|s| CStr::from_bytes_until_nul(s).ok())
            .map(CStr::to_bytes)
            .ok_or(DigestError::String(offset))
    }

    /// Type `id` (not 0, which is `void`).
    fn ty(&self, id: u32) -> Result<RawType<'a>, DigestError> {
        let at = id
            .checked_sub(1)
            .and_then(|index| self.offsets.get(index as usize))
            .ok_or(DigestError::NoSuchType(id))?;
        let at = *at as usize;
        let truncated = DigestError::Truncated { id };
        let [name, info, size_or_type] = fixed_part(self.types, at).ok_or(truncated.clone())?;
        let kind = kind(info);
        let extra_len = extra_len(kind, (info & VLEN_MASK) as usize)
            .ok_or(DigestError::UnknownKind { id, kind })?;
        let start = at + TYPE_LEN;
        let extra = self.types.get(start..start + extra_len).ok_or(truncated)?;
        Ok(RawType {
            name,
            info,
            size_or_type,
            extra,
        })
    }

    /// `id` with typedefs and qualifiers resolved away, as aya's `resolve_type` does.
    fn resolve(&self, mut id: u32) -> Result<u32, DigestError> {
        for _ in 0..MAX_DEPTH {
            if id == 0 {
                return Ok(0);
            }
            let ty = self.ty(id)?;
            match ty.kind() {
                TYPEDEF | VOLATILE | CONST | RESTRICT | TYPE_TAG => id = ty.size_or_type,
                _ => return Ok(id),
            }
        }
        Err(DigestError::TooDeep(id))
    }
}

/// A type of the digest, with ids and name offsets already the digest's.
#[derive(Debug, Default)]
struct OutType {
    name: u32,
    info: u32,
    size_or_type: u32,
    extra: Vec<u32>,
}

/// Which copy of a source type: struct and union types are kept either with their members
/// (expanded) or without; other types have one copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Keep {
    Shallow,
    Expanded,
}

/// Writes the relocation digest's types and strings.
struct Builder<'s, 'a> {
    source: &'s Source<'a>,
    /// The wanted structs, to expand wherever they are met.
    roots: HashSet<u32>,
    /// Digest type `id` at index `id - 1`.
    types: Vec<OutType>,
    strings: Vec<u8>,
    string_offsets: HashMap<&'a [u8], u32>,
    copies: HashMap<(u32, Keep), u32>,
    void_ptr: Option<u32>,
}

impl<'s, 'a> Builder<'s, 'a> {
    fn new(source: &'s Source<'a>) -> Self {
        Builder {
            source,
            roots: source.roots.iter().map(|&(id, _)| id).collect(),
            types: Vec::new(),
            // Offset 0 is the empty name.
            strings: vec![0],
            string_offsets: HashMap::new(),
            copies: HashMap::new(),
            void_ptr: None,
        }
    }

    /// Add a type, returning its digest id.
    fn push(&mut self, ty: OutType) -> u32 {
        self.types.push(ty);
        self.types.len() as u32
    }

    /// The digest offset of the source's name at `offset`.
    fn string(&mut self, offset: u32) -> Result<u32, DigestError> {
        let name = self.source.name(offset)?;
        if name.is_empty() {
            return Ok(0);
        }
        if let Some(&at) = self.string_offsets.get(name) {
            return Ok(at);
        }
        let at = self.strings.len() as u32;
        self.strings.extend_from_slice(name);
        self.strings.push(0);
        self.string_offsets.insert(name, at);
        Ok(at)
    }

    /// The one `void *` that stands for every pointer.
    fn void_ptr(&mut self) -> u32 {
        if let Some(id) = self.void_ptr {
            return id;
        }
        let id = self.push(OutType {
            info: PTR << 24,
            ..OutType::default()
        });
        self.void_ptr = Some(id);
        id
    }

    /// The digest id standing for source type `id` as the type of a member, array element or
    /// parameter: see the module docs.
    fn shallow(&mut self, id: u32, depth: usize) -> Result<u32, DigestError> {
        let id = self.source.resolve(id)?;
        if id == 0 {
            return Ok(0);
        }
        let ty = self.source.ty(id)?;
        match ty.kind() {
            PTR => return Ok(self.void_ptr()),
            STRUCT | UNION if self.roots.contains(&id) || self.source.name(ty.name)?.is_empty() => {
                return self.expand(id, depth);
            }
            _ => {}
        }
        if let Some(&copy) = self.copies.get(&(id, Keep::Shallow)) {
            return Ok(copy);
        }
        if depth >= MAX_DEPTH {
            return Err(DigestError::TooDeep(id));
        }
        let name = self.string(ty.name)?;
        let out = match ty.kind() {
            INT => OutType {
                name,
                info: ty.info,
                size_or_type: ty.size_or_type,
                extra: vec![ty.word(0)],
            },
            FLOAT | FWD => OutType {
                name,
                info: ty.info,
                size_or_type: ty.size_or_type,
                extra: Vec::new(),
            },
            // Enums are compared by name only; a named struct that is not wanted is only
            // measured (array strides, member sizes): neither needs its members.
            ENUM | ENUM64 | STRUCT | UNION => OutType {
                name,
                info: ty.info & !VLEN_MASK,
                size_or_type: ty.size_or_type,
                extra: Vec::new(),
            },
            ARRAY => {
                let (element, index, len) = (ty.word(0), ty.word(1), ty.word(2));
                let element = self.shallow(element, depth + 1)?;
                let index = self.shallow(index, depth + 1)?;
                OutType {
                    name,
                    info: ty.info,
                    size_or_type: 0,
                    extra: vec![element, index, len],
                }
            }
            kind => return Err(DigestError::UnexpectedKind { id, kind }),
        };
        let copy = self.push(out);
        self.copies.insert((id, Keep::Shallow), copy);
        Ok(copy)
    }

    /// The digest id of source struct or union `id` with all its members.
    fn expand(&mut self, id: u32, depth: usize) -> Result<u32, DigestError> {
        if let Some(&copy) = self.copies.get(&(id, Keep::Expanded)) {
            return Ok(copy);
        }
        if depth >= MAX_DEPTH {
            return Err(DigestError::TooDeep(id));
        }
        let ty = self.source.ty(id)?;
        if !matches!(ty.kind(), STRUCT | UNION) {
            return Err(DigestError::UnexpectedKind {
                id,
                kind: ty.kind(),
            });
        }
        let name = self.string(ty.name)?;
        // Registered before the members so that a (malformed) cycle ends here.
        let copy = self.push(OutType {
            name,
            info: ty.info,
            size_or_type: ty.size_or_type,
            extra: Vec::new(),
        });
        self.copies.insert((id, Keep::Expanded), copy);
        let mut extra = Vec::with_capacity(ty.vlen() * 3);
        for member in ty.records(3) {
            let field = |i: usize| read_u32(member, i * 4).unwrap_or(0);
            let (member_name, member_type, offset) = (field(0), field(1), field(2));
            let digest_type = if self.source.name(member_name)?.is_empty() {
                // aya searches a nameless member's type for the wanted name, whatever that
                // type's own name.
                let resolved = self.source.resolve(member_type)?;
                match resolved {
                    0 => 0,
                    _ if matches!(self.source.ty(resolved)?.kind(), STRUCT | UNION) => {
                        self.expand(resolved, depth + 1)?
                    }
                    _ => self.shallow(resolved, depth + 1)?,
                }
            } else {
                self.shallow(member_type, depth + 1)?
            };
            extra.extend([self.string(member_name)?, digest_type, offset]);
        }
        if let Some(out) = self.types.get_mut(copy as usize - 1) {
            out.extra = extra;
        }
        Ok(copy)
    }

    /// The BTF of the kept types.
    fn finish(self) -> Result<Vec<u8>, DigestError> {
        let type_len = self
            .types
            .iter()
            .map(|t| TYPE_LEN + 4 * t.extra.len())
            .sum();
        let mut btf = BtfWriter::new(type_len, &self.strings)?;
        for ty in &self.types {
            btf.put(&[ty.name, ty.info, ty.size_or_type]);
            btf.put(&ty.extra);
        }
        Ok(btf.finish(&self.strings))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aya::{Btf, Endianness};

    /// `BTF_KIND_FUNC` as aya's `BtfKind`, which aya does not re-export by name.
    fn func_kind<K: TryFrom<u32>>() -> K
    where
        K::Error: std::fmt::Debug,
    {
        K::try_from(FUNC).unwrap()
    }

    /// Builds raw BTF type by type; ids are given out in call order from 1.
    #[derive(Default)]
    pub(crate) struct BtfBuilder {
        words: Vec<u32>,
        strings: Vec<u8>,
        count: u32,
    }

    impl BtfBuilder {
        pub(crate) fn new() -> Self {
            BtfBuilder {
                strings: vec![0],
                ..Default::default()
            }
        }

        fn name(&mut self, name: &str) -> u32 {
            if name.is_empty() {
                return 0;
            }
            let at = self.strings.len() as u32;
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            at
        }

        fn add(&mut self, name: &str, kind: u32, vlen: usize, third: u32, extra: &[u32]) -> u32 {
            let name = self.name(name);
            self.words.extend([name, (kind << 24) | vlen as u32, third]);
            self.words.extend_from_slice(extra);
            self.count += 1;
            self.count
        }

        pub(crate) fn int(&mut self, name: &str, size: u32) -> u32 {
            self.add(name, INT, 0, size, &[size * 8])
        }

        pub(crate) fn ptr(&mut self, to: u32) -> u32 {
            self.add("", PTR, 0, to, &[])
        }

        pub(crate) fn typedef(&mut self, name: &str, to: u32) -> u32 {
            self.add(name, TYPEDEF, 0, to, &[])
        }

        pub(crate) fn constant(&mut self, to: u32) -> u32 {
            self.add("", CONST, 0, to, &[])
        }

        pub(crate) fn array(&mut self, element: u32, index: u32, len: u32) -> u32 {
            self.add("", ARRAY, 0, 0, &[element, index, len])
        }

        /// A struct (or union) with members `(name, type, bit offset)`.
        pub(crate) fn composite(
            &mut self,
            kind: u32,
            name: &str,
            size: u32,
            members: &[(&str, u32, u32)],
        ) -> u32 {
            let mut extra = Vec::new();
            for &(member, ty, offset) in members {
                extra.extend([self.name(member), ty, offset]);
            }
            self.add(name, kind, members.len(), size, &extra)
        }

        pub(crate) fn enumeration(&mut self, name: &str, variants: &[&str]) -> u32 {
            let mut extra = Vec::new();
            for (value, variant) in variants.iter().enumerate() {
                extra.extend([self.name(variant), value as u32]);
            }
            self.add(name, ENUM, variants.len(), 4, &extra)
        }

        pub(crate) fn func_proto(&mut self, ret: u32, params: &[(&str, u32)]) -> u32 {
            let mut extra = Vec::new();
            for &(param, ty) in params {
                extra.extend([self.name(param), ty]);
            }
            self.add("", FUNC_PROTO, params.len(), ret, &extra)
        }

        pub(crate) fn func(&mut self, name: &str, proto: u32) -> u32 {
            self.add(name, FUNC, 1, proto, &[])
        }

        pub(crate) fn bytes(&self) -> Vec<u8> {
            let type_len = (self.words.len() * 4) as u32;
            let mut out = Vec::new();
            out.extend_from_slice(&MAGIC.to_ne_bytes());
            out.extend_from_slice(&[VERSION, 0]);
            for word in [24, 0, type_len, type_len, self.strings.len() as u32] {
                out.extend_from_slice(&u32::to_ne_bytes(word));
            }
            for word in &self.words {
                out.extend_from_slice(&word.to_ne_bytes());
            }
            out.extend_from_slice(&self.strings);
            out
        }
    }

    /// What a struct member looks like to a relocation: bit offset, resolved kind and byte
    /// size of its type.
    #[derive(Debug, PartialEq, Eq)]
    pub(crate) struct MemberView {
        pub(crate) bit_offset: u32,
        pub(crate) kind: u32,
        pub(crate) size: u64,
    }

    /// Member `member` of the first struct or union named `name` in `raw`, searched as aya
    /// does (by name, through nameless members).
    pub(crate) fn member(raw: &[u8], name: &str, member: &str) -> Option<MemberView> {
        let source = Source::parse(raw, &[name], "").ok()?;
        let &(root, _) = source.roots.first()?;
        find_member(&source, root, member, 0)
    }

    fn find_member(source: &Source, id: u32, wanted: &str, depth: usize) -> Option<MemberView> {
        let ty = source.ty(source.resolve(id).ok()?).ok()?;
        if depth > MAX_DEPTH || !matches!(ty.kind(), STRUCT | UNION) {
            return None;
        }
        let kind_flag = ty.info >> 31 == 1;
        for m in ty.records(3) {
            let field = |i: usize| read_u32(m, i * 4).unwrap();
            let offset = if kind_flag {
                field(2) & 0xff_ffff
            } else {
                field(2)
            };
            let name = source.name(field(0)).ok()?;
            if name.is_empty() {
                if let Some(mut found) = find_member(source, field(1), wanted, depth + 1) {
                    found.bit_offset += offset;
                    return Some(found);
                }
            } else if name == wanted.as_bytes() {
                let resolved = source.resolve(field(1)).ok()?;
                let kind = source.ty(resolved).ok()?.kind();
                return Some(MemberView {
                    bit_offset: offset,
                    kind,
                    size: type_size(source, resolved)?,
                });
            }
        }
        None
    }

    /// Byte size of a type, as aya's `type_size` computes it.
    fn type_size(source: &Source, mut id: u32) -> Option<u64> {
        let mut count = 1u64;
        for _ in 0..MAX_DEPTH {
            let ty = source.ty(id).ok()?;
            match ty.kind() {
                ARRAY => {
                    count = u64::from(ty.word(2));
                    id = ty.word(0);
                }
                PTR => return Some(8 * count),
                INT | FLOAT | ENUM | ENUM64 | STRUCT | UNION => {
                    return Some(u64::from(ty.size_or_type) * count);
                }
                _ => id = ty.size_or_type,
            }
        }
        None
    }

    /// A small kernel-like BTF: `task_struct` with typedef'd ints, pointers, an anonymous
    /// union holding a wanted field, an array of structs and a named embedded struct, then
    /// `padding` unrelated types before the iterator function.
    fn kernel_like(padding: usize) -> (Vec<u8>, u32) {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4); // 1
        let pid_t = b.typedef("pid_t", int); // 2
        let const_pid_t = b.constant(pid_t); // 3
        let long = b.int("long unsigned int", 8); // 4
        // 5: struct list_head { next, prev } (named, not wanted)
        let list_ptr = 6;
        b.composite(
            STRUCT,
            "list_head",
            16,
            &[("next", list_ptr, 0), ("prev", list_ptr, 64)],
        );
        b.ptr(5); // 6
        // 7: struct task_struct *
        let task_ptr = b.ptr(8);
        // 8: task_struct
        let anon_union = 9;
        let upid_array = 11;
        b.composite(
            STRUCT,
            "task_struct",
            96,
            &[
                ("state", long, 0),
                ("pid", pid_t, 64),
                ("tgid", const_pid_t, 96),
                ("", anon_union, 128),
                ("tasks", 5, 192),
                ("numbers", upid_array, 320),
                ("parent", task_ptr, 704),
            ],
        );
        // 9: union { thread_pid; unsigned long raw; }
        let pid_ptr = 13;
        b.composite(
            UNION,
            "",
            8,
            &[("thread_pid", pid_ptr, 0), ("raw", long, 0)],
        );
        // 10: struct upid { int nr; void *ns; }
        let void_ptr = 14;
        b.composite(STRUCT, "upid", 16, &[("nr", int, 0), ("ns", void_ptr, 64)]);
        // 11: struct upid[3], 12: its index type
        b.array(10, 12, 3);
        b.int("__ARRAY_SIZE_TYPE__", 4); // 12
        b.ptr(15); // 13: struct pid *
        b.ptr(0); // 14: void *
        // 15: struct pid
        b.composite(STRUCT, "pid", 24, &[("level", int, 0), ("numbers", 11, 64)]);
        b.enumeration("pid_type", &["PIDTYPE_PID", "PIDTYPE_TGID"]); // 16
        for _ in 0..padding {
            b.int("filler", 4);
        }
        let proto = b.func_proto(int, &[("task", task_ptr), ("fd", int)]);
        b.func("bpf_iter_other", proto);
        let func = b.func("bpf_iter_task_file", proto);
        (b.bytes(), func)
    }

    const WANTED: &[&str] = &["task_struct", "pid", "upid"];
    const FUNC_NAME: &str = "bpf_iter_task_file";

    #[test]
    fn the_digest_keeps_what_relocations_read_and_the_function_id() {
        let (raw, func) = kernel_like(50);
        let Digest {
            relocations: digest,
            attach,
        } = digest(&raw, WANTED, FUNC_NAME).unwrap();
        Btf::parse(&digest, Endianness::default()).unwrap();
        let attach = Btf::parse(&attach, Endianness::default()).unwrap();
        assert_eq!(
            attach.id_by_type_name_kind(FUNC_NAME, func_kind()).unwrap(),
            func
        );
        let cases = [
            ("task_struct", "state"),
            ("task_struct", "pid"),
            ("task_struct", "tgid"),
            ("task_struct", "thread_pid"), // through the anonymous union
            ("task_struct", "raw"),
            ("task_struct", "tasks"),
            ("task_struct", "numbers"),
            ("task_struct", "parent"),
            ("pid", "level"),
            ("pid", "numbers"),
            ("upid", "nr"),
            ("upid", "ns"),
        ];
        for (name, field) in cases {
            let want = member(&raw, name, field).unwrap();
            assert_eq!(member(&digest, name, field), Some(want), "{name}.{field}");
        }
        // Typedefs and const are resolved away; the named embedded struct is kept empty,
        // at its size.
        let pid = member(&digest, "task_struct", "pid").unwrap();
        assert_eq!((pid.kind, pid.size), (INT, 4));
        let tasks = member(&digest, "task_struct", "tasks").unwrap();
        assert_eq!((tasks.kind, tasks.size), (STRUCT, 16));
        assert_eq!(member(&digest, "list_head", "next"), None);
        assert!(member(&raw, "list_head", "next").is_some());
        // The array of structs keeps its stride.
        let numbers = member(&digest, "task_struct", "numbers").unwrap();
        assert_eq!((numbers.kind, numbers.size), (ARRAY, 48));
    }

    /// The kinds of every type of `btf`, by id from 1.
    fn kinds(btf: &[u8]) -> Vec<u32> {
        let source = Source::parse(btf, &[], "").unwrap();
        (1..=source.offsets.len() as u32)
            .map(|id| source.ty(id).unwrap().kind())
            .collect()
    }

    #[test]
    fn pointers_share_one_void_pointer_and_unreachable_types_are_dropped() {
        let (raw, func) = kernel_like(50);
        let digest = digest(&raw, WANTED, FUNC_NAME).unwrap();
        let kinds = kinds(&digest.relocations);
        assert!(kinds.len() < 16, "{kinds:?}");
        assert_eq!(kinds.iter().filter(|&&k| k == PTR).count(), 1);
        assert!(!kinds.contains(&TYPEDEF) && !kinds.contains(&CONST));
        // The enum is not reachable from the wanted structs, nor are the fillers.
        assert!(!kinds.contains(&ENUM) && !kinds.contains(&FUNC));
        let text = String::from_utf8_lossy(&digest.relocations);
        assert!(!text.contains("PIDTYPE") && !text.contains("filler"));
        assert!(!text.contains("pid_t") && !text.contains("bpf_iter"));
        // The attach BTF: a prototype, placeholders, the function.
        let kinds = self::kinds(&digest.attach);
        assert_eq!(kinds.len(), func as usize);
        assert_eq!(kinds[0], FUNC_PROTO);
        assert!(kinds[1..kinds.len() - 1].iter().all(|&k| k == PTR));
        assert_eq!(kinds.last(), Some(&FUNC));
        assert_eq!(
            digest.attach.len(),
            24 + 12 * func as usize + FUNC_NAME.len() + 2
        );
    }

    #[test]
    fn flavored_names_are_candidates_too() {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4);
        b.composite(STRUCT, "pid___old", 4, &[("level", int, 0)]);
        b.composite(STRUCT, "pid", 8, &[("level", int, 32)]);
        b.composite(STRUCT, "pidfoo", 8, &[("level", int, 32)]);
        let proto = b.func_proto(0, &[]);
        let func = b.func(FUNC_NAME, proto);
        let digest = digest(&b.bytes(), &["pid"], FUNC_NAME).unwrap();
        let source = Source::parse(&digest.relocations, &["pid"], FUNC_NAME).unwrap();
        assert_eq!(source.roots.len(), 2);
        let source = Source::parse(&digest.attach, &[], FUNC_NAME).unwrap();
        assert_eq!(source.func, Some(func));
        assert!(!String::from_utf8_lossy(&digest.relocations).contains("pidfoo"));
    }

    #[test]
    fn a_nameless_member_of_a_named_struct_type_is_searched_too() {
        // `struct file { struct file_head; }` (-fms-extensions): aya finds `f_op` through it.
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4); // 1
        let void_ptr = b.ptr(0); // 2
        let head = b.composite(STRUCT, "file_head", 16, &[("f_op", void_ptr, 64)]);
        let typedef = b.typedef("file_head_t", head);
        b.composite(
            STRUCT,
            "file",
            24,
            &[("f_count", int, 0), ("", typedef, 64)],
        );
        b.func(FUNC_NAME, 0);
        let digest = digest(&b.bytes(), &["file"], FUNC_NAME).unwrap();
        let want = member(&b.bytes(), "file", "f_op").unwrap();
        assert_eq!(want.bit_offset, 128);
        assert_eq!(member(&digest.relocations, "file", "f_op"), Some(want));
    }

    #[test]
    fn the_function_keeps_its_id_wherever_it_is() {
        // At ids 1 and 2, before the wanted struct: the attach BTF needs no room for anything.
        for padding in [0, 1, 2] {
            let mut b = BtfBuilder::new();
            for _ in 0..padding {
                b.int("pad", 1);
            }
            let func = b.func(FUNC_NAME, 0);
            let int = b.int("int", 4);
            b.composite(STRUCT, "pid", 4, &[("level", int, 0)]);
            let digest = digest(&b.bytes(), &["pid"], FUNC_NAME).unwrap();
            let attach = Btf::parse(&digest.attach, Endianness::default()).unwrap();
            assert_eq!(
                attach.id_by_type_name_kind(FUNC_NAME, func_kind()).unwrap(),
                func
            );
            assert_eq!(kinds(&digest.attach).len(), func as usize);
        }
    }

    #[test]
    fn missing_pieces_are_errors() {
        let (raw, _) = kernel_like(50);
        assert_eq!(
            digest(&raw, &["task_struct", "inode"], FUNC_NAME),
            Err(DigestError::MissingStruct("inode".into()))
        );
        assert_eq!(
            digest(&raw, WANTED, "bpf_iter_nothing"),
            Err(DigestError::MissingFunc("bpf_iter_nothing".into()))
        );
        // A struct named like the function is not the function.
        let mut b = BtfBuilder::new();
        b.composite(STRUCT, FUNC_NAME, 0, &[]);
        b.composite(STRUCT, "pid", 0, &[]);
        assert_eq!(
            digest(&b.bytes(), &["pid"], FUNC_NAME),
            Err(DigestError::MissingFunc(FUNC_NAME.into()))
        );
    }

    #[test]
    fn malformed_input_is_an_error_never_a_panic() {
        let (raw, _) = kernel_like(20);
        assert!(digest(&raw, WANTED, FUNC_NAME).is_ok());
        // Every truncation.
        for len in 0..raw.len() {
            assert!(
                digest(&raw[..len], WANTED, FUNC_NAME).is_err(),
                "length {len}"
            );
        }
        // Byte-swapped, wrong version, garbage.
        let mut swapped = raw.clone();
        swapped.swap(0, 1);
        assert!(matches!(
            digest(&swapped, WANTED, FUNC_NAME),
            Err(DigestError::Magic(_))
        ));
        let mut version = raw.clone();
        version[2] = 2;
        assert_eq!(
            digest(&version, WANTED, FUNC_NAME),
            Err(DigestError::Version(2))
        );
        assert!(digest(&[0xff; 64], WANTED, FUNC_NAME).is_err());
        // Every byte corrupted in a few ways: any outcome but a panic, and what is accepted
        // parses.
        for at in 0..raw.len() {
            for value in [0x00, 0x01, 0x13, 0x7f, 0x80, 0xff] {
                let mut bad = raw.clone();
                bad[at] = value;
                if let Ok(digest) = digest(&bad, WANTED, FUNC_NAME) {
                    assert!(Btf::parse(&digest.relocations, Endianness::default()).is_ok());
                    assert!(Btf::parse(&digest.attach, Endianness::default()).is_ok());
                }
            }
        }
    }

    #[test]
    fn cycles_and_dangling_references_are_errors() {
        // A nameless member whose type is the struct itself, and a typedef loop.
        let mut b = BtfBuilder::new();
        b.composite(STRUCT, "pid", 8, &[("", 1, 0)]); // 1
        let proto = b.func_proto(0, &[]);
        for _ in 0..5 {
            b.int("pad", 1);
        }
        b.func(FUNC_NAME, proto);
        // Ends at the repeated type: well-formed enough for a digest.
        assert!(digest(&b.bytes(), &["pid"], FUNC_NAME).is_ok());

        let mut b = BtfBuilder::new();
        b.typedef("a", 2); // 1
        b.typedef("b", 1); // 2
        b.composite(STRUCT, "pid", 8, &[("level", 1, 0)]); // 3
        let proto = b.func_proto(0, &[]);
        for _ in 0..5 {
            b.int("pad", 1);
        }
        b.func(FUNC_NAME, proto);
        assert!(matches!(
            digest(&b.bytes(), &["pid"], FUNC_NAME),
            Err(DigestError::TooDeep(_))
        ));

        let mut b = BtfBuilder::new();
        b.composite(STRUCT, "pid", 8, &[("level", 99, 0)]); // 1
        let proto = b.func_proto(0, &[]);
        for _ in 0..5 {
            b.int("pad", 1);
        }
        b.func(FUNC_NAME, proto);
        assert_eq!(
            digest(&b.bytes(), &["pid"], FUNC_NAME),
            Err(DigestError::NoSuchType(99))
        );
    }

    #[test]
    fn the_live_kernel_btf_digest_relocates_like_the_full_btf() {
        let path = crate::process::bpf::BTF_PATH;
        let raw = match std::fs::read(path) {
            Ok(raw) => raw,
            // The CI kernel has BTF (its BPF iterators work): a missing one there is a failure.
            Err(e) if std::env::var_os("CI").is_some_and(|v| v == "true") => {
                panic!("cannot read {path} under CI: {e}")
            }
            Err(e) => {
                println!("SKIP: cannot read {path}: {e}");
                return;
            }
        };
        let wanted = crate::process::bpf::iterator::RELOCATED_STRUCTS;
        // The attach points the iterators are loaded with: FUNCs the kernel has, at their
        // own ids.
        use crate::process::bpf::iterator::Variant;
        let full = Btf::parse(&raw, Endianness::default()).unwrap();
        for variant in [Variant::TaskFile, Variant::FdWalk] {
            let func = variant.iter_func();
            let digest = digest(&raw, wanted, &func).unwrap();
            let attach = Btf::parse(&digest.attach, Endianness::default()).unwrap();
            assert_eq!(
                attach.id_by_type_name_kind(&func, func_kind()).unwrap(),
                full.id_by_type_name_kind(&func, func_kind()).unwrap()
            );
        }
        let func = Variant::FdWalk.iter_func();
        let digest = digest(&raw, wanted, &func).unwrap();
        Btf::parse(&digest.relocations, Endianness::default()).unwrap();
        let fields = crate::process::bpf::iterator::tests::relocated_fields();
        assert!(fields.len() >= 5);
        for (name, fields) in fields {
            for field in fields {
                let want = member(&raw, &name, &field);
                assert!(want.is_some(), "{name}.{field} not in the kernel's BTF");
                assert_eq!(
                    member(&digest.relocations, &name, &field),
                    want,
                    "{name}.{field}"
                );
            }
        }
        // The element of pid.numbers keeps its size (its stride).
        assert_eq!(
            member(&digest.relocations, "upid", "nr"),
            member(&raw, "upid", "nr")
        );
        let small = digest.relocations.len() + digest.attach.len();
        assert!(small < raw.len() / 3, "{small} of {} bytes", raw.len());
        println!(
            "digest: {} + {} of {} bytes",
            digest.relocations.len(),
            digest.attach.len(),
            raw.len()
        );
    }
}
