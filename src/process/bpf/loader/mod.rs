//! Load an object's iterator programs with their attach ids found by a scan of the raw kernel
//! BTF ([`attach_id`]), so that no parsed copy of the kernel's types is ever built; aya 0.14
//! (through [`aya_workaround`]) stays the fallback.
//!
//! aya's `Iter::load` takes the attach point as a parsed `aya::Btf` and looks the function up
//! in it; the id it hands the kernel is the function's position there, so that `Btf` must hold
//! a type for every id below it: the attach digest's placeholders, which aya keeps as 72-byte
//! `BtfType`s, 4.6 MiB for `bpf_iter_task` (id 64,172 here), at the moment the sockets are
//! being collected. Newer aya (0.15, 0.16) still takes a `&Btf` in `Iter::load`, and needs Rust
//! 1.98 besides (this toolchain is 1.95).
//!
//! So this module keeps aya-obj, aya's own object layer, for everything that does not need the
//! attach id: parsing the object, setting its read-only globals, fixing its BTF up for this
//! kernel, CO-RE relocations (against the small relocation digest of `btf_digest`), map and
//! call relocations; aya for creating the maps (`MapData::create`) and reading them (`Map`);
//! and makes only the calls that carry the attach id, or that aya keeps crate-private, itself
//! ([`sys`]): loading the object's BTF, filling and freezing the global-data maps, loading each
//! program at its id, and creating its iterator link and passes.
//!
//! Anything unexpected before the kernel sees a program (a BTF the scan does not understand,
//! a map kind this loader does not create, a relocation aya-obj refuses) loads the object
//! through aya instead, and [`Loaded::aya_fallback`] says why for `-v`: a problem here costs
//! time and memory, never correctness. A program the kernel's verifier refuses is refused
//! for good: aya would hand it the same instructions at the same id (the caller then tries
//! the next program, as before).
//!
//! What it saves, measured on the shared 2-core development machine (release builds with and
//! without this module, run interleaved in `world.py` worlds; `LSPORTS_TIMING=1` and
//! `/usr/bin/time -f %M`, medians of 5 to 15 runs): the process's peak RSS when the program
//! is verified drops from 11.8 to 7.3 MiB in the quarter world, 14.5 to 8.4 in the large one,
//! 13.9 to 9.2 in the double one and 10.9 to 5.9 with `--netns all` over 201 namespaces (the
//! loading thread's anonymous memory peaks at about 1.7 MiB instead of 6). The whole run's
//! peak drops where the load made it (quarter 11.6 to 8.1 MiB, large 14.0 to 12.9) and stays
//! where the listing's tail makes it (double 19.4, `--netns all` 15.5). Loading, from the
//! thread's start to the program verified, takes about as long or less (host 25 against
//! 19 ms; large world 67 against 51 ms, on a busy machine): the scan takes about 1 ms, and
//! aya's parse of the placeholders is gone.

pub mod attach_id;
mod sys;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use aya::maps::{Map, MapData};
use aya::programs::{Iter, ProgramError};
use aya::{Btf, Ebpf, Endianness};
use aya_obj::generated::bpf_map_type;
use aya_obj::{EbpfSectionKind, ProgramSection};

use super::aya_workaround::{self, KernelBtf, btf_digest};
use super::error::BpfUnavailable;
use super::iterator::chain;
use super::raw_btf::RawBtf;

/// An object to load, and which of its iterator programs.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    /// The compiled object (ELF).
    pub object: &'a [u8],
    /// The kernel structs its CO-RE accesses go through (see `btf_digest`).
    pub relocated: &'a [&'a str],
    /// Each program to load: its function name and the iterator type it attaches to (`task`
    /// for `bpf_iter_task`).
    pub programs: &'a [(&'a str, &'a str)],
    /// Its read-only globals (name, value's bytes in native order).
    pub globals: &'a [(&'a str, &'a [u8])],
}

/// The object's programs, loaded and ready for passes, by whichever loader could.
#[derive(Debug)]
pub struct Loaded {
    /// The programs and maps.
    pub iterators: Iterators,
    /// Why aya loaded them rather than this module (`None`: this module did), for `-v`.
    pub aya_fallback: Option<String>,
}

/// Loaded iterator programs and the object's maps.
pub enum Iterators {
    /// Loaded here, at the ids the scan found.
    Own(Own),
    /// Loaded by aya (the fallback).
    Aya(Ebpf),
}

impl std::fmt::Debug for Iterators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Iterators::Own(_) => "Iterators::Own",
            Iterators::Aya(_) => "Iterators::Aya",
        })
    }
}

/// What this module loaded: the programs by function name, and the maps by name. Everything is
/// a file descriptor, closed on drop.
pub struct Own {
    programs: HashMap<String, OwnedFd>,
    maps: HashMap<String, Map>,
}

impl Iterators {
    /// The map `name` (for reading and writing as aya's typed maps).
    pub fn map_mut(&mut self, name: &str) -> Option<&mut Map> {
        match self {
            Iterators::Own(own) => own.maps.get_mut(name),
            Iterators::Aya(ebpf) => ebpf.map_mut(name),
        }
    }

    /// Attach the loaded program `program` and open one pass over it: reading the file runs
    /// it. The link is the file's to keep.
    pub fn open(&mut self, program: &str) -> Result<File, BpfUnavailable> {
        match self {
            Iterators::Own(own) => {
                let fd = own
                    .programs
                    .get(program)
                    .ok_or_else(|| no_program(program))?;
                let syscall = |call: &str, e: std::io::Error| {
                    BpfUnavailable::Load(format!("{call} for {program}: {e}"))
                };
                let link =
                    sys::iterator_link(fd.as_fd()).map_err(|e| syscall("bpf_link_create", e))?;
                let pass =
                    sys::open_iterator(link.as_fd()).map_err(|e| syscall("bpf_iter_create", e))?;
                Ok(File::from(pass))
            }
            Iterators::Aya(ebpf) => {
                let iter = aya_iter(ebpf, program)?;
                let load = |e: ProgramError| BpfUnavailable::Load(chain(&e));
                let link_id = iter.attach().map_err(load)?;
                let link = iter.take_link(link_id).map_err(load)?;
                link.into_file()
                    .map_err(|e| BpfUnavailable::Load(chain(&e)))
            }
        }
    }
}

/// The environment variable that makes aya load every iterator when it is `aya`: both paths
/// must give the same records, and tests and measurements compare them.
pub const FORCE_VARIABLE: &str = "LSPORTS_BPF_LOADER";

/// Which loader loads the programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// This module, falling back to aya.
    Own,
    /// aya alone.
    Aya,
}

impl Choice {
    /// What `LSPORTS_BPF_LOADER` asks for: aya when it is `aya`, this module otherwise.
    pub fn from_env() -> Choice {
        match std::env::var(FORCE_VARIABLE).as_deref() {
            Ok("aya") => Choice::Aya,
            _ => Choice::Own,
        }
    }
}

/// Load `wanted`'s programs: here where it can, through aya where it cannot or where
/// `LSPORTS_BPF_LOADER` asks for it.
pub fn load(wanted: &Wanted<'_>) -> Result<Loaded, BpfUnavailable> {
    load_with(wanted, Choice::from_env())
}

/// [`load`] with the loader `choice`.
pub fn load_with(wanted: &Wanted<'_>, choice: Choice) -> Result<Loaded, BpfUnavailable> {
    if choice == Choice::Aya {
        return Ok(Loaded {
            iterators: Iterators::Aya(load_aya(wanted)?),
            aya_fallback: Some(format!("{FORCE_VARIABLE}=aya asks for it")),
        });
    }
    match load_own(wanted) {
        Ok(own) => Ok(Loaded {
            iterators: Iterators::Own(own),
            aya_fallback: None,
        }),
        Err(OwnError::Refused(why)) => Err(why),
        Err(OwnError::Fallback(why)) => {
            crate::sys::timing::mark("bpf: own loader failed, loading through aya");
            Ok(Loaded {
                iterators: Iterators::Aya(load_aya(wanted)?),
                aya_fallback: Some(why),
            })
        }
    }
}

/// Why [`load_own`] did not load the programs.
#[derive(Debug)]
enum OwnError {
    /// The kernel's verdict, which aya would get too: final.
    Refused(BpfUnavailable),
    /// Something this module could not do: aya may.
    Fallback(String),
}

/// `what` failed for `why`: a reason to load through aya instead.
fn fallback(what: &str, why: impl std::fmt::Display) -> OwnError {
    OwnError::Fallback(format!("{what}: {why}"))
}

/// Load `wanted`'s programs here: attach ids from the scan, everything else as aya would.
fn load_own(wanted: &Wanted<'_>) -> Result<Own, OwnError> {
    let (ids, target) = attach_points(wanted)?;
    let mut object = Object::prepare(wanted, &target)?;
    drop(target);
    crate::sys::timing::mark("bpf: object loaded");
    let programs = ids
        .into_iter()
        .map(|(program, id)| Ok((program.to_owned(), object.load_program(program, id)?)))
        .collect::<Result<HashMap<_, _>, OwnError>>()?;
    crate::sys::timing::mark("bpf: program verified");
    Ok(Own {
        programs,
        maps: object.into_maps()?,
    })
}

/// Each program, by function name, with the kernel's type id of its attach point.
type AttachIds<'w> = Vec<(&'w str, u32)>;

/// Each wanted program with the kernel's id of its attach point, and the relocation digest
/// of the kernel's BTF, parsed: all the kernel's types the load needs, read in one opening of
/// the raw BTF, which is gone by the time the object is loaded (5 MiB where it is read
/// rather than mapped).
fn attach_points<'w>(wanted: &Wanted<'w>) -> Result<(AttachIds<'w>, Btf), OwnError> {
    let funcs: Vec<String> = (wanted.programs.iter())
        .map(|(_, iter_type)| format!("bpf_iter_{iter_type}"))
        .collect();
    let raw = RawBtf::open().map_err(|e| {
        OwnError::Refused(BpfUnavailable::NoBtf {
            path: super::BTF_PATH.into(),
            reason: e.to_string(),
        })
    })?;
    let names: Vec<&str> = funcs.iter().map(String::as_str).collect();
    let ids = attach_id::func_ids(raw.bytes(), &names)
        .map_err(|e| fallback("scanning the kernel's BTF", e))?;
    crate::sys::timing::mark("bpf: attach ids found");
    let digest = btf_digest::relocations(raw.bytes(), wanted.relocated)
        .map_err(|e| fallback("digesting the kernel's BTF", e))?;
    drop(raw);
    let target = Btf::parse(&digest, Endianness::default())
        .map_err(|e| fallback("parsing the BTF digest", chain(&e)))?;
    crate::sys::timing::mark("bpf: kernel types digested");
    let ids = (wanted.programs.iter().zip(funcs.iter().zip(ids)))
        .map(|(&(program, _), (func, id))| match id {
            Some(id) => Ok((program, id)),
            // This kernel has no such iterator (aya would say the same).
            None => Err(OwnError::Refused(BpfUnavailable::NoIterator(format!(
                "no function {func} in the kernel's BTF"
            )))),
        })
        .collect::<Result<_, _>>()?;
    Ok((ids, target))
}

/// An object parsed and relocated by aya-obj, its maps created and its BTF loaded.
struct Object {
    obj: aya_obj::Object,
    /// The object's BTF in the kernel, which the programs' func_info and line_info describe.
    btf: Option<OwnedFd>,
    /// Each map created, with its definition (aya-obj's map relocation wants both; the
    /// created map keeps its own copy, out of reach).
    maps: HashMap<String, (MapData, aya_obj::Map)>,
}

impl Object {
    /// Parse `wanted.object`, set its globals, load its BTF, relocate it against `target` (the
    /// kernel's types it reads) and create its maps, as aya's `EbpfLoader::load` does for the
    /// map kinds and sections lsports' objects have.
    fn prepare(wanted: &Wanted<'_>, target: &Btf) -> Result<Object, OwnError> {
        let mut obj = aya_obj::Object::parse(wanted.object)
            .map_err(|e| fallback("parsing the object", chain(&e)))?;
        let globals = wanted
            .globals
            .iter()
            .map(|&(name, value)| (name, (value, true)))
            .collect();
        // A name the object lacks fails here, as it does in aya.
        obj.patch_map_data(globals)
            .map_err(|e| fallback("setting the object's globals", chain(&e)))?;
        let features = aya::features();
        let btf = match features.btf() {
            Some(btf_features) => match obj.fixup_and_sanitize_btf(btf_features) {
                Ok(Some(btf)) => Some(
                    sys::load_btf(&btf.to_bytes())
                        .map_err(|e| fallback("loading the object's BTF", e))?,
                ),
                Ok(None) => None,
                Err(e) => return Err(fallback("fixing the object's BTF up", chain(&e))),
            },
            // Tracing programs need BTF: aya says so in its own words.
            None => {
                return Err(OwnError::Fallback(
                    "the kernel reports no BTF support".into(),
                ));
            }
        };
        obj.relocate_btf(target)
            .map_err(|e| fallback("relocating the object (CO-RE)", chain(&e)))?;
        let mut object = Object {
            obj,
            btf,
            maps: HashMap::new(),
        };
        object.create_maps(features.bpf_global_data())?;
        object.relocate()?;
        Ok(object)
    }

    /// Create every map of the object and fill its global-data sections (`.rodata` frozen
    /// after, so its values are constants to the verifier).
    fn create_maps(&mut self, global_data: bool) -> Result<(), OwnError> {
        for (name, map) in self.obj.maps.drain().collect::<Vec<_>>() {
            let data_section = matches!(
                map.section_kind(),
                EbpfSectionKind::Bss | EbpfSectionKind::Data | EbpfSectionKind::Rodata
            );
            if data_section && !global_data {
                // As aya does: its accesses then fail to relocate, and aya says why.
                return Err(OwnError::Fallback(
                    "the kernel has no global data for BPF".into(),
                ));
            }
            if !simple_map(map.map_type()) || map.pinning() != aya_obj::maps::PinningType::None {
                return Err(OwnError::Fallback(format!(
                    "map {name} is of a kind this loader does not create"
                )));
            }
            let mut data = map.data().to_vec();
            let rodata = map.section_kind() == EbpfSectionKind::Rodata;
            let btf = self.btf.as_ref().map(AsFd::as_fd);
            let definition = map.clone();
            let created = MapData::create(map, &name, btf)
                .map_err(|e| fallback("creating a map", chain(&e)))?;
            let fd = created.fd().as_fd();
            if !data.is_empty() {
                sys::set_element_zero(fd, &mut data)
                    .map_err(|e| fallback(&format!("filling map {name}"), e))?;
            }
            if rodata {
                sys::freeze(fd).map_err(|e| fallback(&format!("freezing map {name}"), e))?;
            }
            self.maps.insert(name, (created, definition));
        }
        Ok(())
    }

    /// Point the programs' map accesses at the maps created, link their calls, and drop what
    /// this kernel lacks (as aya does).
    fn relocate(&mut self) -> Result<(), OwnError> {
        let text_sections: HashSet<usize> = self.obj.functions.keys().map(|(s, _)| *s).collect();
        let definitions = self.maps.iter().map(|(name, (map, definition))| {
            (name.as_str(), map.fd().as_fd().as_raw_fd(), definition)
        });
        self.obj
            .relocate_maps(definitions, &text_sections)
            .map_err(|e| fallback("relocating map accesses", chain(&e)))?;
        self.obj
            .relocate_calls(&text_sections)
            .map_err(|e| fallback("relocating calls", chain(&e)))?;
        self.obj.sanitize_functions(aya::features());
        Ok(())
    }

    /// Load the program `name` as an iterator at the kernel's type `attach_btf_id`.
    fn load_program(&mut self, name: &str, attach_btf_id: u32) -> Result<OwnedFd, OwnError> {
        let program = self
            .obj
            .programs
            .get(name)
            .ok_or_else(|| OwnError::Refused(no_program(name)))?;
        if !matches!(program.section, ProgramSection::Iter { sleepable: false }) {
            // A sleepable iterator needs a flag this loader does not set: aya sets it.
            return Err(OwnError::Fallback(format!(
                "{name} is no plain iterator program"
            )));
        }
        let function = self
            .obj
            .functions
            .get(&program.function_key())
            .ok_or_else(|| OwnError::Fallback(format!("no code for program {name}")))?;
        let func_info = function.func_info.func_info_bytes();
        let line_info = function.line_info.line_info_bytes();
        let load = sys::ProgramLoad {
            name,
            insns: &function.instructions,
            license: &program.license,
            btf: self.btf.as_ref().map(AsFd::as_fd),
            func_info: &func_info,
            func_info_rec_size: function.func_info_rec_size as u32,
            line_info: &line_info,
            line_info_rec_size: function.line_info_rec_size as u32,
        };
        sys::load_iterator(&load, attach_btf_id).map_err(|failed| {
            let mut why = format!("loading {name}: {}", failed.error);
            if !failed.log.is_empty() {
                why.push_str(": ");
                why.push_str(&failed.log);
            }
            OwnError::Refused(BpfUnavailable::Load(why))
        })
    }

    /// The maps, as aya reads and writes them.
    fn into_maps(self) -> Result<HashMap<String, Map>, OwnError> {
        self.maps
            .into_iter()
            .map(|(name, (data, _))| match Map::from_map_data(data) {
                Ok(map) => Ok((name, map)),
                Err(e) => Err(fallback("wrapping a map", chain(&e))),
            })
            .collect()
    }
}

/// Whether aya creates a map of `map_type` from its definition alone: no per-CPU or page-size
/// fix-ups (perf event arrays, ring buffers) and no inner map.
fn simple_map(map_type: u32) -> bool {
    [
        bpf_map_type::BPF_MAP_TYPE_ARRAY,
        bpf_map_type::BPF_MAP_TYPE_HASH,
        bpf_map_type::BPF_MAP_TYPE_LRU_HASH,
        bpf_map_type::BPF_MAP_TYPE_PERCPU_ARRAY,
        bpf_map_type::BPF_MAP_TYPE_PERCPU_HASH,
        bpf_map_type::BPF_MAP_TYPE_LRU_PERCPU_HASH,
    ]
    .iter()
    .any(|&kind| kind as u32 == map_type)
}

/// Load `wanted`'s programs through aya, against the BTF digests of `aya_workaround` (the way
/// every program was loaded before this module).
fn load_aya(wanted: &Wanted<'_>) -> Result<Ebpf, BpfUnavailable> {
    let funcs: Vec<String> = wanted
        .programs
        .iter()
        .map(|(_, iter_type)| format!("bpf_iter_{iter_type}"))
        .collect();
    let first = funcs.first().map_or("", String::as_str);
    let (mut ebpf, btf) =
        aya_workaround::load_with_globals(wanted.object, wanted.relocated, first, wanted.globals)?;
    crate::sys::timing::mark("bpf: object loaded");
    for (index, &(program, iter_type)) in wanted.programs.iter().enumerate() {
        // The first digest holds the first program's attach point; each other one needs its own.
        let other;
        let attach = if index == 0 {
            btf.attach()
        } else {
            other = KernelBtf::for_attach(&funcs[index])?;
            other.attach()
        };
        aya_iter(&mut ebpf, program)?
            .load(iter_type, attach)
            .map_err(|e| match e {
                // The attach point (`bpf_iter_task_file`, say) is missing from the kernel's BTF.
                ProgramError::Btf(_) => BpfUnavailable::NoIterator(chain(&e)),
                _ => BpfUnavailable::Load(chain(&e)),
            })?;
        crate::sys::timing::mark("bpf: program verified");
    }
    Ok(ebpf)
}

/// `name` in `ebpf`, as an iterator.
fn aya_iter<'e>(ebpf: &'e mut Ebpf, name: &str) -> Result<&'e mut Iter, BpfUnavailable> {
    ebpf.program_mut(name)
        .ok_or_else(|| no_program(name))?
        .try_into()
        .map_err(|e: ProgramError| BpfUnavailable::Load(chain(&e)))
}

/// The object has no program `name`: a build mistake, said as such.
fn no_program(name: &str) -> BpfUnavailable {
    BpfUnavailable::Load(format!("no program {name} in the object"))
}
