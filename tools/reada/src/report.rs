//! Everything the tool prints: summary lines, JSON, error messages and the
//! progress line. All pure functions of their inputs.

use std::time::Duration;

use crate::args::Options;
use crate::key::{tree_label, Key};
use crate::uapi::BtrfsIoctlReadaArgs;

/// Where the readahead module publishes its counters (lines `name value`).
pub const COUNTERS_PATH: &str = "/sys/kernel/debug/btrfs_reada/counters";

/// Erases the current terminal line (carriage return, erase in line).
pub const CLEAR_LINE: &str = "\r\x1b[2K";

const SPINNER: [char; 4] = ['|', '/', '-', '\\'];

/// `n` bytes in binary units with one decimal: `512 B`, `18.8 MiB`.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// The run's subject: `extent tree (2)` or `extent tree (2), commit root`.
fn subject(opts: &Options) -> String {
    let mut s = tree_label(opts.tree_id);
    if opts.commit_root {
        s.push_str(", commit root");
    }
    s
}

/// The summary line of a completed request, e.g.
/// `extent tree (2), readahead: 1234 blocks, 1200 read (18.8 MiB), 34 cached,
/// 0 errors in 1.234 s (1000 blocks/s, 15.2 MiB/s)`, with `, N stale` after
/// the errors when a commit cut links.
pub fn format_summary(opts: &Options, out: &BtrfsIoctlReadaArgs) -> String {
    let secs = out.elapsed_ns as f64 / 1e9;
    let mut s = format!(
        "{}, {}: {} blocks, {} read ({}), {} cached, {} errors",
        subject(opts),
        opts.mode.name(),
        out.blocks_visited,
        out.blocks_read,
        format_bytes(out.bytes_read),
        out.blocks_cached,
        out.errors,
    );
    if out.blocks_stale > 0 {
        s.push_str(&format!(", {} stale", out.blocks_stale));
    }
    s.push_str(&format!(" in {secs:.3} s"));
    if out.elapsed_ns > 0 {
        let blocks_per_s = out.blocks_visited as f64 / secs;
        let mib_per_s = out.bytes_read as f64 / (1024.0 * 1024.0) / secs;
        s.push_str(&format!(
            " ({blocks_per_s:.0} blocks/s, {mib_per_s:.1} MiB/s)"
        ));
    }
    s
}

/// The line printed for `--detach`.
pub fn format_detached(opts: &Options) -> String {
    format!("{}: readahead started in the background", subject(opts))
}

/// `s` as a JSON string literal, quotes included.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_key(k: &Key) -> String {
    format!(
        "{{\"objectid\":{},\"type\":{},\"offset\":{}}}",
        k.objectid, k.type_, k.offset
    )
}

/// One run as a single-line JSON object. Numbers are plain JSON integers
/// (u64; values above 2^53 lose precision in JavaScript-style readers).
pub fn format_json(opts: &Options, out: &BtrfsIoctlReadaArgs) -> String {
    format!(
        concat!(
            "{{\"tree_id\":{},\"mode\":{},\"flags\":{},\"detach\":{},\"commit_root\":{},",
            "\"start\":{},\"end\":{},",
            "\"blocks_visited\":{},\"blocks_read\":{},\"blocks_cached\":{},",
            "\"bytes_read\":{},\"elapsed_ns\":{},\"errors\":{},\"blocks_stale\":{}}}"
        ),
        opts.tree_id,
        json_string(opts.mode.name()),
        opts.flags(),
        opts.detach,
        opts.commit_root,
        json_key(&opts.start),
        json_key(&opts.end),
        out.blocks_visited,
        out.blocks_read,
        out.blocks_cached,
        out.bytes_read,
        out.elapsed_ns,
        out.errors,
        out.blocks_stale,
    )
}

/// The message for an errno returned by `BTRFS_IOC_READA`.
pub fn errno_message(errno: i32, tree_id: u64) -> String {
    match errno {
        libc::EPERM => "permission denied: needs CAP_SYS_ADMIN".to_string(),
        libc::EOPNOTSUPP => "btrfs readahead module not loaded (insmod btrfs_reada.ko)".to_string(),
        libc::ENOTTY => {
            "not a btrfs filesystem, or the kernel lacks the readahead patches".to_string()
        }
        libc::ENOENT => format!("no tree with id {tree_id} on this filesystem"),
        libc::EINVAL => "invalid argument (key order, mode, flags or reserved fields)".to_string(),
        libc::EFAULT => "bad address: the kernel could not access the ioctl argument".to_string(),
        libc::ENOMEM => "out of memory in the kernel".to_string(),
        libc::EIO => "I/O error while reading tree blocks".to_string(),
        libc::EINTR => {
            "interrupted by a signal; the readahead goes on in the background".to_string()
        }
        _ => format!(
            "BTRFS_IOC_READA failed: {}",
            std::io::Error::from_raw_os_error(errno)
        ),
    }
}

/// The message for a failed open() of the mount point.
pub fn open_error_message(mountpoint: &str, err: &std::io::Error) -> String {
    format!("cannot open {mountpoint}: {err}")
}

/// The value of counter `name` in a counters file (lines `name value`), if
/// there is such a line with a number.
pub fn parse_counter(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if words.next()? != name {
            return None;
        }
        words.next()?.parse().ok()
    })
}

/// The counters file as `(name, value)` pairs, in file order. Lines that
/// are not `name number` are an error: the file's format is an interface.
pub fn parse_counters(text: &str) -> Result<Vec<(String, u64)>, String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let (Some(name), Some(value), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!("malformed counters line '{line}'"));
        };
        let value = value
            .parse()
            .map_err(|_| format!("malformed counters line '{line}'"))?;
        out.push((name.to_string(), value));
    }
    Ok(out)
}

/// The counters for people: the module-wide ones, one line per user that
/// made requests (`user_NAME_requests`, `_blocks_read`, ...), then one line
/// per device (`dev.FSID.DEVID.reads` and `.bytes`), grouped by filesystem.
pub fn format_counters(counters: &[(String, u64)]) -> String {
    let get = |name: &str| {
        counters
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |&(_, v)| v)
    };
    let mut s = format!(
        "requests: {} active, {} done\n\
         blocks: {} queued, {} read, {} cached, {} failed, {} stale, {} cancelled, {} retried\n\
         held in memory: {} requests, {} blocks\n",
        get("requests_active"),
        get("requests_done"),
        get("blocks_queued"),
        get("blocks_read"),
        get("blocks_cached"),
        get("blocks_failed"),
        get("blocks_stale"),
        get("blocks_cancelled"),
        get("blocks_retried"),
        get("requests_live"),
        get("blocks_live"),
    );
    for (name, requests) in counters {
        let Some(user) = name
            .strip_prefix("user_")
            .and_then(|n| n.strip_suffix("_requests"))
        else {
            continue;
        };
        if *requests == 0 {
            continue;
        }
        let of = |what: &str| get(&format!("user_{user}_{what}"));
        s.push_str(&format!(
            "{user}: {requests} requests, {} blocks read, {} cached, {} errors, {} stale\n",
            of("blocks_read"),
            of("blocks_cached"),
            of("errors"),
            of("stale"),
        ));
    }
    // Devices in file order, each once: (fsid, devid, reads, bytes, errors).
    let mut devices: Vec<(String, String, u64, u64, u64)> = Vec::new();
    for (name, value) in counters {
        let Some(rest) = name.strip_prefix("dev.") else {
            continue;
        };
        let mut parts = rest.rsplitn(3, '.');
        let (Some(what), Some(devid), Some(fsid)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let idx = match devices.iter().position(|d| d.0 == fsid && d.1 == devid) {
            Some(i) => i,
            None => {
                devices.push((fsid.to_string(), devid.to_string(), 0, 0, 0));
                devices.len() - 1
            }
        };
        match what {
            "reads" => devices[idx].2 = *value,
            "bytes" => devices[idx].3 = *value,
            "errors" => devices[idx].4 = *value,
            _ => (),
        }
    }
    if devices.is_empty() {
        s.push_str("devices: none read from (on a mounted filesystem) yet\n");
    }
    for (fsid, devid, reads, bytes, errors) in devices {
        s.push_str(&format!(
            "filesystem {fsid} device {devid}: {reads} reads, {}, {errors} errors\n",
            format_bytes(bytes)
        ));
    }
    s
}

/// The counters as one JSON object, `{"name": value, ...}`.
pub fn format_counters_json(counters: &[(String, u64)]) -> String {
    let fields: Vec<String> = counters
        .iter()
        .map(|(n, v)| format!("{}:{v}", json_string(n)))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// The progress line (without the leading carriage return) at `tick`.
pub fn progress_line(
    opts: &Options,
    tick: u64,
    elapsed: Duration,
    blocks_read: Option<u64>,
) -> String {
    let spin = SPINNER[(tick % SPINNER.len() as u64) as usize];
    let mut s = format!(
        "{spin} {}, {}: {:.1} s",
        subject(opts),
        opts.mode.name(),
        elapsed.as_secs_f64()
    );
    if let Some(n) = blocks_read {
        s.push_str(&format!(", blocks_read {n}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{parse_args, Command};

    fn opts(args: &[&str]) -> Options {
        match parse_args(args) {
            Ok(Command::Run(o)) => o,
            other => panic!("{other:?}"),
        }
    }

    fn result() -> BtrfsIoctlReadaArgs {
        BtrfsIoctlReadaArgs {
            blocks_visited: 1234,
            blocks_read: 1200,
            blocks_cached: 34,
            bytes_read: 1200 * 16384,
            elapsed_ns: 1_234_000_000,
            errors: 0,
            ..Default::default()
        }
    }

    #[test]
    fn bytes() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1024), "1.0 KiB");
        assert_eq!(format_bytes(16384), "16.0 KiB");
        assert_eq!(format_bytes(1200 * 16384), "18.8 MiB");
        assert_eq!(format_bytes(3 << 30), "3.0 GiB");
        assert_eq!(format_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn summary() {
        let o = opts(&["/m", "--tree", "extent"]);
        assert_eq!(
            format_summary(&o, &result()),
            "extent tree (2), readahead: 1234 blocks, 1200 read (18.8 MiB), 34 cached, \
             0 errors in 1.234 s (1000 blocks/s, 15.2 MiB/s)"
        );
        let o = opts(&["/m", "--tree", "256", "--mode", "plain", "--commit-root"]);
        let r = BtrfsIoctlReadaArgs {
            blocks_visited: 3,
            blocks_cached: 3,
            errors: 2,
            ..Default::default()
        };
        assert_eq!(
            format_summary(&o, &r),
            "tree 256, commit root, plain: 3 blocks, 0 read (0 B), 3 cached, 2 errors in 0.000 s"
        );
        let o = opts(&["/m", "--tree", "fs", "--commit-root"]);
        let r = BtrfsIoctlReadaArgs {
            blocks_visited: 1,
            blocks_cached: 1,
            blocks_stale: 40,
            ..Default::default()
        };
        assert_eq!(
            format_summary(&o, &r),
            "fs tree (5), commit root, readahead: 1 blocks, 0 read (0 B), 1 cached, \
             0 errors, 40 stale in 0.000 s"
        );
    }

    #[test]
    fn detached() {
        let o = opts(&["/m", "--tree", "extent", "--detach"]);
        assert_eq!(
            format_detached(&o),
            "extent tree (2): readahead started in the background"
        );
    }

    #[test]
    fn json_strings() {
        assert_eq!(json_string("plain"), "\"plain\"");
        assert_eq!(json_string("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(json_string("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(json_string("\u{1}\u{1f}"), r#""\u0001\u001f""#);
        assert_eq!(json_string("é/ü"), "\"é/ü\"");
        // Every escaped string must come back unchanged through the checker.
        for s in ["", "x", "a\"b\\c\n", "\u{0}\u{7f}é\u{2028}"] {
            assert_eq!(
                mini_json::parse(&json_string(s)),
                Ok(mini_json::Value::Str(s.into()))
            );
        }
    }

    #[test]
    fn json_object() {
        use mini_json::Value::{Bool, Num, Obj, Str};
        let o = opts(&[
            "/m",
            "--tree",
            "csum",
            "--start",
            "1,2,3",
            "--end",
            "max",
            "--commit-root",
            "--detach",
            "--json",
        ]);
        let text = format_json(&o, &result());
        assert!(!text.contains('\n'));
        let v = mini_json::parse(&text).unwrap();
        let key = |o: &str, t: &str, f: &str| {
            Obj(vec![
                ("objectid".into(), Num(o.into())),
                ("type".into(), Num(t.into())),
                ("offset".into(), Num(f.into())),
            ])
        };
        let want = Obj(vec![
            ("tree_id".into(), Num("7".into())),
            ("mode".into(), Str("readahead".into())),
            ("flags".into(), Num("3".into())),
            ("detach".into(), Bool(true)),
            ("commit_root".into(), Bool(true)),
            ("start".into(), key("1", "2", "3")),
            (
                "end".into(),
                key("18446744073709551615", "255", "18446744073709551615"),
            ),
            ("blocks_visited".into(), Num("1234".into())),
            ("blocks_read".into(), Num("1200".into())),
            ("blocks_cached".into(), Num("34".into())),
            ("bytes_read".into(), Num("19660800".into())),
            ("elapsed_ns".into(), Num("1234000000".into())),
            ("errors".into(), Num("0".into())),
            ("blocks_stale".into(), Num("0".into())),
        ]);
        assert_eq!(v, want);

        let o = opts(&["/m", "--tree", "fs", "--mode", "forward", "--json"]);
        let v = mini_json::parse(&format_json(&o, &BtrfsIoctlReadaArgs::default())).unwrap();
        let Obj(fields) = v else { panic!() };
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("mode"), Some(Str("forward".into())));
        assert_eq!(get("flags"), Some(Num("0".into())));
        assert_eq!(get("detach"), Some(Bool(false)));
        assert_eq!(get("commit_root"), Some(Bool(false)));
        assert_eq!(get("start"), Some(key("0", "0", "0")));
        assert_eq!(fields.len(), 14);
    }

    #[test]
    fn mini_json_rejects_garbage() {
        for bad in [
            "",
            "{",
            "{\"a\":}",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "[1]x",
            "\"\\x\"",
            "01",
            "{a:1}",
            "\"\u{1}\"",
            "tru",
        ] {
            assert!(mini_json::parse(bad).is_err(), "{bad:?}");
        }
        assert!(mini_json::parse(" { \"a\" : [ 1 , -2.5e3 , null , false ] } ").is_ok());
    }

    #[test]
    fn errno_messages() {
        let cases = [
            (libc::EPERM, "permission denied: needs CAP_SYS_ADMIN"),
            (
                libc::EOPNOTSUPP,
                "btrfs readahead module not loaded (insmod btrfs_reada.ko)",
            ),
            (
                libc::ENOTTY,
                "not a btrfs filesystem, or the kernel lacks the readahead patches",
            ),
            (libc::ENOENT, "no tree with id 256 on this filesystem"),
            (
                libc::EINVAL,
                "invalid argument (key order, mode, flags or reserved fields)",
            ),
            (
                libc::EFAULT,
                "bad address: the kernel could not access the ioctl argument",
            ),
            (libc::ENOMEM, "out of memory in the kernel"),
            (libc::EIO, "I/O error while reading tree blocks"),
            (
                libc::EINTR,
                "interrupted by a signal; the readahead goes on in the background",
            ),
        ];
        for (errno, want) in cases {
            assert_eq!(errno_message(errno, 256), want);
        }
        let other = errno_message(libc::ENOSPC, 5);
        assert!(other.starts_with("BTRFS_IOC_READA failed: "), "{other}");
        assert!(other.contains("os error 28"), "{other}");
        assert!(!other.contains('\n'));
    }

    #[test]
    fn open_errors() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        let m = open_error_message("/nope", &e);
        assert!(m.starts_with("cannot open /nope: "), "{m}");
        assert!(m.contains("os error 2"), "{m}");
    }

    #[test]
    fn counters_file() {
        let text = "requests_active 1\nrequests_done 4\nblocks_queued 10\nblocks_read 7\n\
                    blocks_cached 2\nblocks_failed 1\nblocks_stale 0\nblocks_cancelled 0\n\
                    dev.0b5e-ab.1.reads 4\ndev.0b5e-ab.1.bytes 65536\n\
                    dev.0b5e-ab.2.reads 3\ndev.0b5e-ab.2.bytes 49152\ndev.0b5e-ab.2.errors 1\n\
                    user_ioctl_requests 0\nuser_ioctl_blocks_read 0\n\
                    user_scrub_requests 4\nuser_scrub_blocks_read 7\nuser_scrub_blocks_cached 2\n\
                    user_scrub_errors 1\nuser_scrub_stale 0\n";
        let c = parse_counters(text).unwrap();
        assert_eq!(c.len(), 20);
        let human = format_counters(&c);
        assert!(human.contains("requests: 1 active, 4 done"), "{human}");
        assert!(
            human.contains(
                "blocks: 10 queued, 7 read, 2 cached, 1 failed, 0 stale, 0 cancelled, 0 retried"
            ),
            "{human}"
        );
        assert!(
            human.contains("filesystem 0b5e-ab device 1: 4 reads, 64.0 KiB, 0 errors"),
            "{human}"
        );
        assert!(
            human.contains("filesystem 0b5e-ab device 2: 3 reads, 48.0 KiB, 1 errors"),
            "{human}"
        );
        assert!(
            human.contains("scrub: 4 requests, 7 blocks read, 2 cached, 1 errors, 0 stale"),
            "{human}"
        );
        // A user with no request is left out.
        assert!(!human.contains("ioctl:"), "{human}");
        let json = format_counters_json(&c);
        assert!(mini_json::parse(&json).is_ok(), "{json}");
        assert!(json.contains("\"dev.0b5e-ab.2.bytes\":49152"), "{json}");
        assert!(format_counters(&[]).contains("devices: none"));
        assert!(parse_counters("blocks_read x\n").is_err());
        assert!(parse_counters("blocks_read 1 2\n").is_err());
        assert_eq!(parse_counters("\n").unwrap(), vec![]);
    }

    #[test]
    fn counters() {
        let text = "blocks_visited 10\nblocks_read 42\nbytes_read 688128\n";
        assert_eq!(parse_counter(text, "blocks_read"), Some(42));
        assert_eq!(parse_counter(text, "blocks_visited"), Some(10));
        assert_eq!(
            parse_counter("  blocks_read\t7  \n", "blocks_read"),
            Some(7)
        );
        assert_eq!(
            parse_counter("blocks_read_total 5\nblocks_read 6", "blocks_read"),
            Some(6)
        );
        assert_eq!(parse_counter("", "blocks_read"), None);
        assert_eq!(parse_counter("blocks_read\n", "blocks_read"), None);
        assert_eq!(parse_counter("blocks_read lots\n", "blocks_read"), None);
        assert_eq!(parse_counter("garbage\n\n\u{fffd}", "blocks_read"), None);
    }

    #[test]
    fn progress() {
        let o = opts(&["/m", "--tree", "extent"]);
        let d = Duration::from_millis(3250);
        assert_eq!(
            progress_line(&o, 0, d, Some(99)),
            "| extent tree (2), readahead: 3.2 s, blocks_read 99"
        );
        assert_eq!(
            progress_line(&o, 5, d, None),
            "/ extent tree (2), readahead: 3.2 s"
        );
        assert!(progress_line(&o, 3, d, None).starts_with('\\'));
        assert!(!CLEAR_LINE.contains('\n'));
    }

    /// A small strict JSON parser, enough to check the tool's output.
    mod mini_json {
        #[derive(Debug, Clone, PartialEq)]
        pub enum Value {
            Null,
            Bool(bool),
            /// The number's text, so u64 values compare exactly.
            Num(String),
            Str(String),
            Arr(Vec<Value>),
            Obj(Vec<(String, Value)>),
        }

        struct P<'a> {
            s: &'a [u8],
            i: usize,
        }

        pub fn parse(text: &str) -> Result<Value, String> {
            let mut p = P {
                s: text.as_bytes(),
                i: 0,
            };
            let v = p.value()?;
            p.ws();
            if p.i != p.s.len() {
                return Err(format!("trailing data at {}", p.i));
            }
            Ok(v)
        }

        impl P<'_> {
            fn ws(&mut self) {
                while self.i < self.s.len() && b" \t\r\n".contains(&self.s[self.i]) {
                    self.i += 1;
                }
            }
            fn peek(&self) -> Option<u8> {
                self.s.get(self.i).copied()
            }
            fn eat(&mut self, c: u8) -> Result<(), String> {
                self.ws();
                if self.peek() == Some(c) {
                    self.i += 1;
                    Ok(())
                } else {
                    Err(format!("expected '{}' at {}", c as char, self.i))
                }
            }
            fn lit(&mut self, word: &str, v: Value) -> Result<Value, String> {
                if self.s[self.i..].starts_with(word.as_bytes()) {
                    self.i += word.len();
                    Ok(v)
                } else {
                    Err(format!("bad literal at {}", self.i))
                }
            }
            fn value(&mut self) -> Result<Value, String> {
                self.ws();
                match self.peek().ok_or("unexpected end")? {
                    b'{' => self.object(),
                    b'[' => self.array(),
                    b'"' => self.string().map(Value::Str),
                    b't' => self.lit("true", Value::Bool(true)),
                    b'f' => self.lit("false", Value::Bool(false)),
                    b'n' => self.lit("null", Value::Null),
                    b'-' | b'0'..=b'9' => self.number(),
                    c => Err(format!("unexpected '{}' at {}", c as char, self.i)),
                }
            }
            fn object(&mut self) -> Result<Value, String> {
                self.eat(b'{')?;
                let mut fields = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(Value::Obj(fields));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.eat(b':')?;
                    let v = self.value()?;
                    fields.push((k, v));
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Value::Obj(fields));
                        }
                        _ => return Err(format!("expected ',' or '}}' at {}", self.i)),
                    }
                }
            }
            fn array(&mut self) -> Result<Value, String> {
                self.eat(b'[')?;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(Value::Arr(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::Arr(items));
                        }
                        _ => return Err(format!("expected ',' or ']' at {}", self.i)),
                    }
                }
            }
            fn string(&mut self) -> Result<String, String> {
                if self.peek() != Some(b'"') {
                    return Err(format!("expected string at {}", self.i));
                }
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    let c = self.peek().ok_or("unterminated string")?;
                    self.i += 1;
                    match c {
                        b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                        b'\\' => {
                            let e = self.peek().ok_or("unterminated escape")?;
                            self.i += 1;
                            let ch = match e {
                                b'"' => '"',
                                b'\\' => '\\',
                                b'/' => '/',
                                b'b' => '\u{8}',
                                b'f' => '\u{c}',
                                b'n' => '\n',
                                b'r' => '\r',
                                b't' => '\t',
                                b'u' => {
                                    let hex = self.s.get(self.i..self.i + 4).ok_or("short \\u")?;
                                    let hex =
                                        std::str::from_utf8(hex).map_err(|e| e.to_string())?;
                                    let n =
                                        u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                                    self.i += 4;
                                    char::from_u32(n).ok_or("surrogate \\u not supported")?
                                }
                                _ => return Err(format!("bad escape at {}", self.i)),
                            };
                            let mut buf = [0; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        c if c < 0x20 => return Err("control character in string".into()),
                        c => out.push(c),
                    }
                }
            }
            fn number(&mut self) -> Result<Value, String> {
                let start = self.i;
                if self.peek() == Some(b'-') {
                    self.i += 1;
                }
                let digits = |p: &mut Self| {
                    let s = p.i;
                    while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                        p.i += 1;
                    }
                    p.i - s
                };
                let int_start = self.i;
                let n = digits(self);
                if n == 0 || (n > 1 && self.s[int_start] == b'0') {
                    return Err(format!("bad number at {start}"));
                }
                if self.peek() == Some(b'.') {
                    self.i += 1;
                    if digits(self) == 0 {
                        return Err(format!("bad fraction at {start}"));
                    }
                }
                if matches!(self.peek(), Some(b'e' | b'E')) {
                    self.i += 1;
                    if matches!(self.peek(), Some(b'+' | b'-')) {
                        self.i += 1;
                    }
                    if digits(self) == 0 {
                        return Err(format!("bad exponent at {start}"));
                    }
                }
                let text =
                    std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
                Ok(Value::Num(text.to_string()))
            }
        }
    }
}
