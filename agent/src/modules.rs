//! Loading the drivers the hardware needs, as udev's coldplug would: every device's `modalias`
//! (under `/sys/bus/*/devices`) is matched against `modules.alias` of the running kernel
//! (shell-style globs), the matching modules and their dependencies (`modules.dep`) are loaded
//! with `finit_module(2)`, and this repeats while new devices appear (virtio devices show up
//! only once `virtio_pci` is loaded). `ext4` is always loaded (the Kairos `COS_OEM` partition).
//!
//! Which drivers exist is decided when the initramfs is built (`agent/image/`: NICs, NVMe,
//! AHCI/SATA, virtio, SCSI and common RAID HBAs, ext4); a matching module that is not in the
//! image is skipped without noise.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use crate::probe::{Root, list_dir};

/// Modules loaded whatever the hardware.
pub const ALWAYS: &[&str] = &["ext4"];

/// `modules.alias`: (glob, module name) pairs, in file order.
#[derive(Debug, Default)]
pub struct Aliases(Vec<(String, String)>);

impl Aliases {
    pub fn parse(text: &str) -> Self {
        Self(
            text.lines()
                .filter_map(|line| {
                    let mut words = line.split_whitespace();
                    (words.next() == Some("alias"))
                        .then(|| Some((words.next()?.to_string(), normalize(words.next()?))))
                        .flatten()
                })
                .collect(),
        )
    }

    /// The modules whose aliases match `modalias`.
    pub fn lookup(&self, modalias: &str) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .0
            .iter()
            .filter(|(glob, _)| glob_match(glob.as_bytes(), modalias.as_bytes()))
            .map(|(_, m)| m.as_str())
            .collect();
        out.dedup();
        out
    }
}

/// `modules.dep`: module name → (its file, its dependencies' files in the file's order).
#[derive(Debug, Default)]
pub struct Deps(Vec<(String, String, Vec<String>)>);

impl Deps {
    pub fn parse(text: &str) -> Self {
        Self(
            text.lines()
                .filter_map(|line| {
                    let (file, deps) = line.split_once(':')?;
                    let file = file.trim();
                    Some((
                        module_name(file),
                        file.to_string(),
                        deps.split_whitespace().map(str::to_string).collect(),
                    ))
                })
                .collect(),
        )
    }

    fn file_of(&self, name: &str) -> Option<&(String, String, Vec<String>)> {
        self.0.iter().find(|(n, _, _)| n == name)
    }

    /// The files to load for `name`, dependencies first (modprobe loads the list of
    /// `modules.dep` from its end), without those in `done`; `None` when the module is unknown
    /// (built in, or not shipped).
    pub fn load_order(&self, name: &str, done: &BTreeSet<String>) -> Option<Vec<String>> {
        let (_, file, deps) = self.file_of(&normalize(name))?;
        let mut out: Vec<String> = deps
            .iter()
            .rev()
            .chain(std::iter::once(file))
            .filter(|f| !done.contains(&module_name(f)))
            .cloned()
            .collect();
        out.dedup();
        Some(out)
    }
}

/// The module name of a path in `modules.dep`: base name without `.ko[.xz|.zst|.gz]`, `-` as `_`.
pub fn module_name(file: &str) -> String {
    let base = file.rsplit('/').next().unwrap_or(file);
    let stem = base.split(".ko").next().unwrap_or(base);
    normalize(stem)
}

fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// fnmatch(3) without flags: `*`, `?`, `[...]` (with ranges and `!`/`^`), `\` escapes.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(pattern, p, text[t])
                        && matched
                    {
                        p = next;
                        t += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() && pattern[p + 1] == text[t] => {
                    p += 2;
                    t += 1;
                    continue;
                }
                b'\\' if p + 1 < pattern.len() => {}
                c if c == text[t] => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class starting at `pattern[at] == '['`: (matched, index after `]`).
fn class(pattern: &[u8], at: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = at + 1;
    let negate = matches!(pattern.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &lo = pattern.get(i)?;
        if lo == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if pattern.get(i + 1) == Some(&b'-') && pattern.get(i + 2).is_some_and(|&h| h != b']') {
            let hi = pattern[i + 2];
            matched |= (lo..=hi).contains(&c);
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
}

/// The modaliases of every device on every bus (sorted, deduplicated).
pub fn modaliases(root: &Root) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for bus in list_dir(&root.path("/sys/bus")) {
        for dev in list_dir(&root.path(&format!("/sys/bus/{bus}/devices"))) {
            if let Some(alias) = root.read(&format!("/sys/bus/{bus}/devices/{dev}/modalias")) {
                out.insert(alias);
            }
        }
    }
    out
}

/// What a round of loading did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Module names loaded (or found loaded already), in order.
    pub loaded: Vec<String>,
    /// `module: error` for the modules that failed.
    pub failed: Vec<String>,
}

/// `modules.softdep`: `softdep <module> pre: <names…> post: <names…>`; only `pre:` matters here
/// (ext4 wants `crypto-crc32c` loaded first, and `modules.dep` does not say so).
#[derive(Debug, Default)]
pub struct SoftDeps(Vec<(String, Vec<String>)>);

impl SoftDeps {
    pub fn parse(text: &str) -> Self {
        Self(
            text.lines()
                .filter_map(|line| {
                    let mut words = line.split_whitespace();
                    if words.next() != Some("softdep") {
                        return None;
                    }
                    let module = normalize(words.next()?);
                    let mut pre = Vec::new();
                    let mut in_pre = false;
                    for w in words {
                        match w {
                            "pre:" => in_pre = true,
                            "post:" => in_pre = false,
                            name if in_pre => pre.push(name.to_string()),
                            _ => {}
                        }
                    }
                    Some((module, pre))
                })
                .collect(),
        )
    }

    fn pre(&self, module: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(m, _)| m == module)
            .flat_map(|(_, pre)| pre.iter().map(String::as_str))
    }
}

/// Loads the modules the devices below `root` need, plus [`ALWAYS`], through `load` (given the
/// module's path under `root`); repeats while new devices appear, at most `rounds` times,
/// waiting `settle` after each round (drivers register devices as they bind).
pub fn load_needed(
    root: &Root,
    rounds: usize,
    settle: std::time::Duration,
    load: &mut dyn FnMut(&Path) -> io::Result<()>,
) -> Result<Loaded, String> {
    let release = root
        .read("/proc/sys/kernel/osrelease")
        .ok_or("cannot read /proc/sys/kernel/osrelease")?;
    let dir = format!("/lib/modules/{release}");
    let read = |name: &str| {
        std::fs::read_to_string(root.path(&format!("{dir}/{name}")))
            .map_err(|e| format!("cannot read {dir}/{name}: {e}"))
    };
    let mut loader = Loader {
        root,
        dir: dir.clone(),
        aliases: Aliases::parse(&read("modules.alias")?),
        deps: Deps::parse(&read("modules.dep")?),
        // Optional: depmod writes it only when some module declares a soft dependency.
        softdeps: SoftDeps::parse(&read("modules.softdep").unwrap_or_default()),
        done: BTreeSet::new(),
        result: Loaded::default(),
        load,
    };
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for round in 0..rounds.max(1) {
        let fresh: Vec<String> = modaliases(root).difference(&seen).cloned().collect();
        if fresh.is_empty() && round > 0 {
            break;
        }
        seen.extend(fresh.iter().cloned());
        let mut wanted: Vec<String> = fresh
            .iter()
            .flat_map(|a| loader.aliases.lookup(a))
            .map(str::to_string)
            .collect();
        if round == 0 {
            wanted.extend(ALWAYS.iter().map(|m| m.to_string()));
        }
        for module in wanted {
            loader.module(&module);
        }
        std::thread::sleep(settle);
    }
    Ok(loader.result)
}

struct Loader<'a> {
    root: &'a Root,
    dir: String,
    aliases: Aliases,
    deps: Deps,
    softdeps: SoftDeps,
    /// Modules loaded or being loaded (a guard against cycles of soft dependencies).
    done: BTreeSet<String>,
    result: Loaded,
    load: &'a mut dyn FnMut(&Path) -> io::Result<()>,
}

impl Loader<'_> {
    /// Loads `name` after its dependencies and their soft `pre:` dependencies.
    fn module(&mut self, name: &str) {
        let Some(files) = self.deps.load_order(name, &self.done) else {
            return;
        };
        for file in files {
            let name = module_name(&file);
            if !self.done.insert(name.clone()) {
                continue;
            }
            // A soft dependency names a module or an alias (`crypto-crc32c`).
            let pre: Vec<String> = self.softdeps.pre(&name).map(str::to_string).collect();
            for wanted in pre {
                let targets: Vec<String> = if self.deps.file_of(&normalize(&wanted)).is_some() {
                    vec![wanted]
                } else {
                    self.aliases
                        .lookup(&wanted)
                        .into_iter()
                        .map(str::to_string)
                        .collect()
                };
                for target in targets {
                    self.module(&target);
                }
            }
            let path: PathBuf = self.root.path(&format!("{}/{file}", self.dir));
            match (self.load)(&path) {
                Ok(()) => self.result.loaded.push(name),
                // EEXIST: already loaded.
                Err(e) if e.raw_os_error() == Some(17) => self.result.loaded.push(name),
                // ENODEV: not for this machine (crc32c-intel on a CPU without SSE4.2).
                Err(e) if e.raw_os_error() == Some(19) => {}
                Err(e) => self.result.failed.push(format!("{name}: {e}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::testing::TempTree;
    use std::time::Duration;

    #[test]
    fn globs_as_fnmatch() {
        let m = |p: &str, t: &str| glob_match(p.as_bytes(), t.as_bytes());
        assert!(m(
            "pci:v00001AF4d00001041sv*sd*bc*sc*i*",
            "pci:v00001AF4d00001041sv00001AF4sd00001100bc02sc00i00"
        ));
        assert!(!m(
            "pci:v00001AF4d00001041sv*sd*bc*sc*i*",
            "pci:v00001AF4d00001042sv00001AF4sd00001100bc02sc00i00"
        ));
        assert!(m(
            "pci:v*d*sv*sd*bc01sc08i02*",
            "pci:v0000144Dd0000A808sv0000144Dsd0000A801bc01sc08i02"
        ));
        assert!(m("virtio:d00000001v*", "virtio:d00000001v00001AF4"));
        assert!(m("a?c", "abc") && !m("a?c", "ac"));
        assert!(m("x[0-9A-F]y", "xBy") && !m("x[0-9A-F]y", "xgy"));
        assert!(m("x[!0-9]y", "xay") && !m("x[!0-9]y", "x5y"));
        assert!(m("*", "") && m("a*", "a") && !m("a*b", "a"));
        assert!(m("a\\*b", "a*b") && !m("a\\*b", "axb"));
        assert!(m("*ab*ab", "xxabyyabab"));
    }

    #[test]
    fn dependencies_first_in_modprobe_order() {
        let deps = Deps::parse(
            "kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz\n\
             kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz\n\
             kernel/net/core/failover.ko.xz:\n",
        );
        let none = BTreeSet::new();
        assert_eq!(
            deps.load_order("virtio-net", &none).unwrap(),
            [
                "kernel/net/core/failover.ko.xz",
                "kernel/drivers/net/net_failover.ko.xz",
                "kernel/drivers/net/virtio_net.ko.xz"
            ]
        );
        let done: BTreeSet<String> = ["failover".to_string()].into();
        assert_eq!(deps.load_order("virtio_net", &done).unwrap().len(), 2);
        assert!(deps.load_order("e1000e", &none).is_none());
        assert_eq!(module_name("kernel/fs/ext4/ext4.ko"), "ext4");
        assert_eq!(module_name("a/b/snd-hda.ko.zst"), "snd_hda");
    }

    /// A machine with a virtio NIC and an NVMe disk on PCI; virtio devices appear once the
    /// virtio_pci driver is loaded.
    fn tree() -> TempTree {
        let t = TempTree::new();
        t.file("proc/sys/kernel/osrelease", "6.1.0-test\n");
        t.file(
            "lib/modules/6.1.0-test/modules.alias",
            "# Aliases extracted from modules themselves.\n\
             alias pci:v00001AF4d00001041sv*sd*bc*sc*i* virtio_pci\n\
             alias pci:v*d*sv*sd*bc01sc08i02* nvme\n\
             alias virtio:d00000001v* virtio_net\n\
             alias pci:v00008086d000010D3sv*sd*bc*sc*i* e1000e\n\
             alias fs-ext4 ext4\n\
             alias crypto-crc32c crc32c_generic\n",
        );
        t.file(
            "lib/modules/6.1.0-test/modules.dep",
            "kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n\
             kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n\
             kernel/drivers/virtio/virtio_ring.ko:\n\
             kernel/drivers/nvme/host/nvme.ko: kernel/drivers/nvme/host/nvme-core.ko\n\
             kernel/drivers/nvme/host/nvme-core.ko:\n\
             kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko\n\
             kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\n\
             kernel/net/core/failover.ko:\n\
             kernel/fs/ext4/ext4.ko: kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko\n\
             kernel/fs/mbcache.ko:\n\
             kernel/fs/jbd2/jbd2.ko:\n\
             kernel/crypto/crc32c_generic.ko:\n",
        );
        t.file(
            "lib/modules/6.1.0-test/modules.softdep",
            "# Soft dependencies extracted from modules themselves.\n\
             softdep ext4 pre: crypto-crc32c\n",
        );
        t.file(
            "sys/bus/pci/devices/0000:00:03.0/modalias",
            "pci:v00001AF4d00001041sv00001AF4sd00001100bc02sc00i00\n",
        );
        t.file(
            "sys/bus/pci/devices/0000:00:04.0/modalias",
            "pci:v0000144Dd0000A808sv0000144Dsd0000A801bc01sc08i02\n",
        );
        t.file(
            "sys/bus/pci/devices/0000:00:05.0/modalias",
            "pci:v00001234d00001111sv0sd0bc03sc00i00\n",
        );
        t
    }

    #[test]
    fn loads_what_the_devices_need_in_order_and_follows_new_devices() {
        let t = tree();
        let root = t.root();
        let mut order = Vec::new();
        let virtio_dev = t.path("sys/bus/virtio/devices/virtio0/modalias");
        let result = load_needed(&root, 4, Duration::ZERO, &mut |path| {
            let name = module_name(&path.to_string_lossy());
            assert!(
                path.starts_with(t.path("lib/modules/6.1.0-test/kernel")),
                "{path:?}"
            );
            // Loading virtio_pci makes the virtio NIC appear on the virtio bus.
            if name == "virtio_pci" {
                std::fs::create_dir_all(virtio_dev.parent().unwrap()).unwrap();
                std::fs::write(&virtio_dev, "virtio:d00000001v00001AF4\n").unwrap();
            }
            order.push(name);
            match order.last().map(String::as_str) {
                Some("jbd2") => return Err(io::Error::from_raw_os_error(17)), // already loaded
                Some("crc32c_generic") => return Err(io::Error::from_raw_os_error(19)), // no device
                _ => {}
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(
            order,
            // Devices in modalias order (the NVMe's sorts first), each module after its
            // dependencies; ext4 in the first round; virtio_net once its device appeared.
            [
                "nvme_core",
                "nvme",
                "virtio_ring",
                "virtio",
                "virtio_pci",
                "jbd2",
                "mbcache",
                "crc32c_generic",
                "ext4",
                "failover",
                "net_failover",
                "virtio_net"
            ]
        );
        let without_enodev: Vec<&String> =
            order.iter().filter(|m| *m != "crc32c_generic").collect();
        assert_eq!(result.loaded.iter().collect::<Vec<_>>(), without_enodev);
        assert!(result.failed.is_empty());
    }

    #[test]
    fn failures_are_collected_and_missing_files_named() {
        let t = tree();
        let result = load_needed(&t.root(), 2, Duration::ZERO, &mut |path| {
            if path.ends_with("nvme.ko") {
                Err(io::Error::from_raw_os_error(2))
            } else {
                Ok(())
            }
        })
        .unwrap();
        assert_eq!(result.failed.len(), 1);
        assert!(
            result.failed[0].starts_with("nvme: "),
            "{:?}",
            result.failed
        );
        std::fs::remove_file(t.path("lib/modules/6.1.0-test/modules.dep")).unwrap();
        let err = load_needed(&t.root(), 1, Duration::ZERO, &mut |_| Ok(())).unwrap_err();
        assert!(err.contains("/lib/modules/6.1.0-test/modules.dep"), "{err}");
    }
}
