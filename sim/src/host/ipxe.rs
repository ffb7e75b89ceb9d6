//! The part of iPXE a virtual host needs: run a script (`#!ipxe`) line by line, with variables,
//! `chain` to further scripts, and end in either a loaded kernel that is booted or `exit`.
//! Fetching is left to the caller ([`Step::Fetch`]) so this stays a pure interpreter.

use std::collections::HashMap;

/// How a chain of scripts ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `boot` with a kernel loaded: its URL and its command line (everything after the URL).
    Kernel { url: String, cmdline: String },
    /// `exit`, or the script ran out: the firmware tries the next boot device.
    Exit,
}

/// One step the interpreter asks its caller to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Fetch this absolute URL and continue with its body ([`Interpreter::run`]).
    Fetch(String),
    Done(Outcome),
}

/// iPXE chains through a handful of scripts at most; a loop is a misconfigured server.
pub const MAX_CHAIN: usize = 8;

/// The interpreter's state across chained scripts: variables persist, as in iPXE.
#[derive(Debug)]
pub struct Interpreter {
    vars: HashMap<String, String>,
    /// The booting NIC's MAC, lower-case with colons.
    mac: String,
    kernel: Option<(String, String)>,
    chained: usize,
}

impl Interpreter {
    pub fn new(mac: &str) -> Interpreter {
        Interpreter {
            vars: HashMap::new(),
            mac: mac.to_ascii_lowercase(),
            kernel: None,
            chained: 0,
        }
    }

    /// Runs the script fetched from `url` until it chains, boots or exits.
    pub fn run(&mut self, url: &str, body: &str) -> Result<Step, String> {
        let mut lines = body.lines();
        if lines.next().map(str::trim_end) != Some("#!ipxe") {
            return Err("not an iPXE script (no #!ipxe line)".into());
        }
        for raw in lines {
            let line = self.expand(raw.trim());
            let mut words = line.split_whitespace();
            let Some(command) = words.next() else {
                continue;
            };
            let rest: Vec<&str> = words.collect();
            match command {
                c if c.starts_with('#') || c.starts_with(':') => {}
                "echo" | "sleep" | "prompt" | "dhcp" | "ifopen" | "imgfree" => {}
                "set" => {
                    let Some((name, value)) = rest.split_first() else {
                        return Err("set without a name".into());
                    };
                    self.vars.insert(name.to_string(), value.join(" "));
                }
                "chain" => {
                    self.chained += 1;
                    if self.chained > MAX_CHAIN {
                        return Err(format!("more than {MAX_CHAIN} chained scripts"));
                    }
                    let target = first_non_option(&rest).ok_or("chain without a URL")?;
                    return Ok(Step::Fetch(resolve(url, target)?));
                }
                "kernel" | "imgexec" => {
                    let mut args = rest.iter().skip_while(|w| w.starts_with("--"));
                    let kernel = args.next().ok_or("kernel without a URL")?;
                    let cmdline = args.copied().collect::<Vec<_>>().join(" ");
                    self.kernel = Some((resolve(url, kernel)?, cmdline));
                }
                "initrd" | "module" => {
                    first_non_option(&rest).ok_or("initrd without a URL")?;
                }
                "boot" => {
                    let (url, cmdline) = self.kernel.take().ok_or("boot without a kernel")?;
                    return Ok(Step::Done(Outcome::Kernel { url, cmdline }));
                }
                "exit" => return Ok(Step::Done(Outcome::Exit)),
                other => return Err(format!("unsupported iPXE command {other:?}")),
            }
        }
        // A script that runs out returns to the firmware, like `exit`.
        Ok(Step::Done(Outcome::Exit))
    }

    /// `${name}` and `${name:type}`; unknown variables expand to nothing, as in iPXE.
    fn expand(&self, line: &str) -> String {
        let mut out = String::with_capacity(line.len());
        let mut rest = line;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let Some(end) = rest[start..].find('}') else {
                out.push_str(&rest[start..]);
                return out;
            };
            let name = &rest[start + 2..start + end];
            out.push_str(&self.variable(name));
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn variable(&self, name: &str) -> String {
        let (name, kind) = name.split_once(':').unwrap_or((name, ""));
        let is_mac = matches!(name, "mac" | "netX/mac" | "net0/mac");
        match (is_mac, kind) {
            (true, "hexhyp") => self.mac.replace(':', "-"),
            (true, _) => self.mac.clone(),
            (false, _) => self.vars.get(name).cloned().unwrap_or_default(),
        }
    }
}

fn first_non_option<'a>(words: &[&'a str]) -> Option<&'a str> {
    words.iter().copied().find(|w| !w.starts_with("--"))
}

/// A relative URL is resolved against the script that named it, as iPXE does.
fn resolve(base: &str, target: &str) -> Result<String, String> {
    let base = reqwest::Url::parse(base).map_err(|e| format!("bad script URL: {e}"))?;
    base.join(target)
        .map(String::from)
        .map_err(|e| format!("bad URL {:?}: {e}", redact(target)))
}

/// A URL as it may be logged: the nonce segment of `/api/v1/boot/...` and `/api/v1/config/...`
/// is replaced, the query kept (it carries only the MAC).
pub fn redact(url: &str) -> String {
    for marker in ["/api/v1/boot/", "/api/v1/config/"] {
        if let Some(at) = url.find(marker) {
            let (head, tail) = url.split_at(at + marker.len());
            let (path, query) = tail
                .split_once('?')
                .map_or((tail, None), |(p, q)| (p, Some(q)));
            let mut segments: Vec<&str> = path.split('/').collect();
            if segments.len() >= 3 {
                segments[2] = "<redacted>";
            }
            let mut out = format!("{head}{}", segments.join("/"));
            if let Some(q) = query {
                out.push('?');
                out.push_str(q);
            }
            return out;
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_stage_url_expands_the_booting_mac() {
        let mut i = Interpreter::new("52:54:00:AA:BB:01");
        let step = i
            .run(
                "http://b7:8080/boot.ipxe",
                "#!ipxe\nchain /ipxe?mac=${netX/mac:hexhyp}\n",
            )
            .unwrap();
        assert_eq!(
            step,
            Step::Fetch("http://b7:8080/ipxe?mac=52-54-00-aa-bb-01".into())
        );
    }

    #[test]
    fn kernel_then_boot_gives_the_command_line() {
        let mut i = Interpreter::new("52:54:00:00:00:01");
        let script = "#!ipxe\nkernel http://img/vmlinuz initrd=initrd.img beskar7.host=h1\ninitrd http://img/initrd.img\nboot\n";
        assert_eq!(
            i.run("http://x/", script).unwrap(),
            Step::Done(Outcome::Kernel {
                url: "http://img/vmlinuz".into(),
                cmdline: "initrd=initrd.img beskar7.host=h1".into()
            })
        );
    }

    #[test]
    fn set_args_survive_a_chain_to_the_users_script() {
        let mut i = Interpreter::new("52:54:00:00:00:01");
        let step = i
            .run(
                "http://b7/api/v1/boot/ns/h/nonce",
                "#!ipxe\nset beskar7-args beskar7.host=h1 beskar7.namespace=ns\nchain http://img/agent.ipxe\n",
            )
            .unwrap();
        assert_eq!(step, Step::Fetch("http://img/agent.ipxe".into()));
        let step = i
            .run(
                "http://img/agent.ipxe",
                "#!ipxe\nkernel vmlinuz console=ttyS0 ${beskar7-args}\nboot",
            )
            .unwrap();
        assert_eq!(
            step,
            Step::Done(Outcome::Kernel {
                url: "http://img/vmlinuz".into(),
                cmdline: "console=ttyS0 beskar7.host=h1 beskar7.namespace=ns".into()
            })
        );
    }

    #[test]
    fn exit_unknown_commands_and_non_scripts() {
        let mut i = Interpreter::new("52:54:00:00:00:01");
        assert_eq!(
            i.run("http://x/", "#!ipxe\necho no\nexit\n").unwrap(),
            Step::Done(Outcome::Exit)
        );
        assert!(i.run("http://x/", "#!ipxe\ngoto x\n").is_err());
        assert!(i.run("http://x/", "<html>").is_err());
        assert!(i.run("http://x/", "#!ipxe\nboot\n").is_err());
    }

    #[test]
    fn nonces_are_redacted() {
        assert_eq!(
            redact("http://b7/api/v1/boot/ns/h1/SECRETNONCE?mac=52-54-00-00-00-01"),
            "http://b7/api/v1/boot/ns/h1/<redacted>?mac=52-54-00-00-00-01"
        );
        assert_eq!(
            redact("https://b7/api/v1/config/ns/h1/CFG"),
            "https://b7/api/v1/config/ns/h1/<redacted>"
        );
        assert_eq!(redact("http://b7/ipxe?mac=x"), "http://b7/ipxe?mac=x");
    }
}
