//! BTF as bpftool reads it (`bpftool -j btf dump file PATH`): the running
//! kernel's (`/sys/kernel/btf/vmlinux`: uapi enums, struct members) or a BPF
//! object's. Tests compare our tables and record mirrors with it, so the
//! oracle is bpftool, not our own BTF reading.
use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
    process::Command,
    sync::OnceLock,
};

use serde::Deserialize;

pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// One BTF: every type, by id.
pub struct Btf {
    types: Vec<BtfType>,
    by_name: HashMap<String, Vec<usize>>,
}

#[derive(Deserialize)]
struct Dump {
    types: Vec<BtfType>,
}

#[derive(Deserialize)]
struct BtfType {
    id: usize,
    kind: String,
    name: String,
    size: Option<u64>,
    type_id: Option<usize>,
    nr_elems: Option<u64>,
    #[serde(default)]
    members: Vec<BtfMember>,
    #[serde(default)]
    values: Vec<EnumValue>,
}

#[derive(Deserialize)]
struct BtfMember {
    name: String,
    type_id: usize,
    bits_offset: u64,
}

#[derive(Deserialize)]
struct EnumValue {
    name: String,
    val: serde_json::Number,
}

/// A struct member's name, byte offset and byte size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberLayout {
    pub name: String,
    pub offset: u64,
    pub size: u64,
}

impl Btf {
    /// Runs bpftool on `path`; panics with what to install or fix.
    pub fn of_file(path: &Path) -> Btf {
        let out = Command::new("bpftool")
            .args(["-j", "btf", "dump", "file"])
            .arg(path)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run bpftool ({e}): ./dev test installs it (apt-get install bpftool)")
            });
        assert!(
            out.status.success(),
            "bpftool btf dump file {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let dump: Dump = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("bpftool's BTF JSON of {}: {e}", path.display()));
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, ty) in dump.types.iter().enumerate() {
            assert_eq!(ty.id, index + 1, "bpftool lists BTF types in id order");
            by_name.entry(ty.name.clone()).or_default().push(index);
        }
        Btf {
            types: dump.types,
            by_name,
        }
    }

    /// The running kernel's BTF, read once per test binary. `None` (with a
    /// message) where the kernel has none, except under CI, which fails.
    pub fn kernel(test: &str) -> Option<&'static Btf> {
        static KERNEL: OnceLock<Option<Btf>> = OnceLock::new();
        let btf = KERNEL.get_or_init(|| {
            Path::new(KERNEL_BTF)
                .exists()
                .then(|| Btf::of_file(Path::new(KERNEL_BTF)))
        });
        if btf.is_none() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: {KERNEL_BTF} missing; CI must run on a kernel with BTF"
            );
            eprintln!(
                "{test}: skipped, {KERNEL_BTF} missing (kernel without CONFIG_DEBUG_INFO_BTF)"
            );
        }
        btf.as_ref()
    }

    fn named(&self, kinds: &[&str], name: &str) -> Option<&BtfType> {
        self.by_name
            .get(name)?
            .iter()
            .map(|&i| &self.types[i])
            .find(|ty| kinds.contains(&ty.kind.as_str()))
    }

    fn get(&self, id: usize) -> &BtfType {
        &self.types[id - 1]
    }

    /// The enumerators of `enum name`: (name, value), in declaration order.
    pub fn enum_values(&self, name: &str) -> Option<Vec<(String, i128)>> {
        let ty = self.named(&["ENUM", "ENUM64"], name)?;
        Some(
            ty.values
                .iter()
                .map(|v| {
                    let val = v
                        .val
                        .as_i64()
                        .map(i128::from)
                        .or_else(|| v.val.as_u64().map(i128::from))
                        .expect("an enumerator is an integer");
                    (v.name.clone(), val)
                })
                .collect(),
        )
    }

    /// The names of uapi `enum name` by value, spelled as bpftool does:
    /// without `prefix`, lower case; aliases share a value, `__MAX_*` is left out.
    pub fn uapi_names(&self, name: &str, prefix: &str) -> BTreeMap<u32, Vec<String>> {
        let values = self
            .enum_values(name)
            .unwrap_or_else(|| panic!("enum {name} missing from the BTF"));
        let mut names: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for (enumerator, value) in values {
            if enumerator.starts_with("__") {
                continue;
            }
            let short = enumerator
                .strip_prefix(prefix)
                .unwrap_or_else(|| panic!("{enumerator} lacks the prefix {prefix}"));
            let value = u32::try_from(value).expect("uapi enum values fit u32");
            names.entry(value).or_default().push(short.to_lowercase());
        }
        names
    }

    /// Whether a function of that name exists (e.g. `bpf_iter_bpf_link`, the
    /// kernel's function behind the bpf_link iterator).
    pub fn has_func(&self, name: &str) -> bool {
        self.named(&["FUNC"], name).is_some()
    }

    /// Whether `struct name` has `member`, also inside anonymous struct or
    /// union members: what `bpf_core_field_exists` finds.
    pub fn has_member(&self, name: &str, member: &str) -> bool {
        self.named(&["STRUCT", "UNION"], name)
            .is_some_and(|ty| self.find_member(ty, member))
    }

    fn find_member(&self, ty: &BtfType, member: &str) -> bool {
        ty.members.iter().any(|m| {
            m.name == member
                || (is_anonymous(&m.name) && {
                    let inner = self.resolve(m.type_id);
                    matches!(inner.kind.as_str(), "STRUCT" | "UNION")
                        && self.find_member(inner, member)
                })
        })
    }

    /// Size and members of `struct name` (byte offsets; no bitfields).
    pub fn struct_layout(&self, name: &str) -> Option<(u64, Vec<MemberLayout>)> {
        let ty = self.named(&["STRUCT"], name)?;
        let members = ty
            .members
            .iter()
            .map(|m| {
                assert!(m.bits_offset % 8 == 0, "{name}.{}: bitfield", m.name);
                MemberLayout {
                    name: m.name.clone(),
                    offset: m.bits_offset / 8,
                    size: self.size_of(m.type_id),
                }
            })
            .collect();
        Some((ty.size.expect("a struct has a size"), members))
    }

    /// Through typedefs and qualifiers to the type that has a layout.
    fn resolve(&self, id: usize) -> &BtfType {
        let ty = self.get(id);
        match ty.kind.as_str() {
            "TYPEDEF" | "CONST" | "VOLATILE" | "RESTRICT" | "TYPE_TAG" => {
                self.resolve(ty.type_id.expect("a modifier refers to a type"))
            }
            _ => ty,
        }
    }

    fn size_of(&self, id: usize) -> u64 {
        let ty = self.resolve(id);
        match ty.kind.as_str() {
            "ARRAY" => {
                ty.nr_elems.expect("an array has nr_elems")
                    * self.size_of(ty.type_id.expect("an array has an element type"))
            }
            // BPF and every 64-bit target this runs on.
            "PTR" => 8,
            kind => ty
                .size
                .unwrap_or_else(|| panic!("BTF {kind} {} has no size", ty.name)),
        }
    }
}

fn is_anonymous(name: &str) -> bool {
    name.is_empty() || name == "(anon)"
}
