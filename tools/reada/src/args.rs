//! Command-line parsing, by hand.

use crate::key::{parse_key, parse_tree, parse_u64, Key};
use crate::uapi;

/// The usage text printed by `--help`.
pub const USAGE: &str = "\
usage: reada MOUNTPOINT --tree TREE [--start KEY] [--end KEY] [--mode MODE]
             [--detach] [--commit-root] [--json] [--repeat N]
       reada --counters [--json]

Read the blocks of one btrfs tree (or a key range of it) with the kernel's
tree readahead ioctl, BTRFS_IOC_READA, and report what the kernel did.
Needs CAP_SYS_ADMIN and the btrfs_reada module.

  MOUNTPOINT        any file or directory on the btrfs filesystem
  --tree TREE       root, extent, chunk, dev, fs, csum, quota, uuid,
                    free-space, block-group, or a numeric tree id (e.g. 256)
  --start KEY       first key, inclusive (default 0,0,0)
  --end KEY         last key, exclusive (default max,max,max)
  --mode MODE       readahead (default): the module's readahead
                    plain: one synchronous block read at a time
                    forward: the stock tree walk with READA_FORWARD
                    forward-always: the same with READA_FORWARD_ALWAYS
                    (send's: siblings at every level, however far)
  --detach          return at once; the readahead goes on in the background
                    (readahead mode only)
  --commit-root     walk the tree's commit root instead of its live root
  --json            print one JSON object per run instead of a summary line
  --repeat N        issue the request N times (default 1)
  --counters        print the module's counters (requests, blocks queued,
                    read, cached, failed; reads and bytes per device) from
                    /sys/kernel/debug/btrfs_reada/counters and exit
  -h, --help        print this help and exit

KEY is OBJECTID[,TYPE[,OFFSET]]. Each field is decimal, 0x-hex or 'max';
TYPE may also be a key type name such as EXTENT_ITEM, dir_index or
EXTENT_CSUM_KEY. Fields left out are 0 in --start and max in --end.

Exit status: 0 on success, 1 if opening MOUNTPOINT or the ioctl failed,
2 on a usage error.
";

/// Which walk the kernel does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Readahead,
    Plain,
    Forward,
    ForwardAlways,
}

impl Mode {
    pub const ALL: [Mode; 4] = [
        Mode::Readahead,
        Mode::Plain,
        Mode::Forward,
        Mode::ForwardAlways,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Readahead => "readahead",
            Mode::Plain => "plain",
            Mode::Forward => "forward",
            Mode::ForwardAlways => "forward-always",
        }
    }

    /// The `BTRFS_READA_MODE_*` value.
    pub fn to_uapi(self) -> u32 {
        match self {
            Mode::Readahead => uapi::BTRFS_READA_MODE_READAHEAD,
            Mode::Plain => uapi::BTRFS_READA_MODE_PLAIN,
            Mode::Forward => uapi::BTRFS_READA_MODE_FORWARD,
            Mode::ForwardAlways => uapi::BTRFS_READA_MODE_FORWARD_ALWAYS,
        }
    }

    pub fn parse(s: &str) -> Result<Mode, String> {
        let t = s.trim().to_ascii_lowercase();
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == t)
            .ok_or_else(|| {
                format!("unknown mode '{s}' (expected readahead, plain, forward or forward-always)")
            })
    }
}

/// One run's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub mountpoint: String,
    pub tree_id: u64,
    pub start: Key,
    pub end: Key,
    pub mode: Mode,
    pub detach: bool,
    pub commit_root: bool,
    pub json: bool,
    pub repeat: u64,
}

impl Options {
    /// The `BTRFS_READA_FLAG_*` bits.
    pub fn flags(&self) -> u32 {
        let mut flags = 0;
        if self.detach {
            flags |= uapi::BTRFS_READA_FLAG_DETACH;
        }
        if self.commit_root {
            flags |= uapi::BTRFS_READA_FLAG_COMMIT_ROOT;
        }
        flags
    }

    /// The ioctl argument for this run: inputs set, outputs and reserved zero.
    pub fn to_uapi(&self) -> uapi::BtrfsIoctlReadaArgs {
        uapi::BtrfsIoctlReadaArgs {
            tree_id: self.tree_id,
            start: self.start.to_uapi(),
            end: self.end.to_uapi(),
            mode: self.mode.to_uapi(),
            flags: self.flags(),
            ..Default::default()
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Run(Options),
    /// Print the module's counters, as JSON if asked.
    Counters {
        json: bool,
    },
}

/// Parses the arguments after the program name. Errors are one-line
/// messages for a usage error (exit status 2).
pub fn parse_args<S: AsRef<str>>(args: &[S]) -> Result<Command, String> {
    let mut mountpoint: Option<String> = None;
    let mut tree: Option<u64> = None;
    let mut start: Option<Key> = None;
    let mut end: Option<Key> = None;
    let mut mode = Mode::Readahead;
    let mut detach = false;
    let mut commit_root = false;
    let mut json = false;
    let mut repeat = 1;
    let mut counters = false;
    let mut options_done = false;

    let mut it = args.iter().map(AsRef::as_ref);
    while let Some(arg) = it.next() {
        if options_done || !arg.starts_with('-') || arg == "-" {
            if let Some(first) = &mountpoint {
                return Err(format!(
                    "unexpected argument '{arg}' (MOUNTPOINT is already '{first}')"
                ));
            }
            mountpoint = Some(arg.to_string());
            continue;
        }
        // --name=value or --name value
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ => (arg, None),
        };
        let takes_value = matches!(name, "--tree" | "--start" | "--end" | "--mode" | "--repeat");
        let value = if takes_value {
            match inline {
                Some(v) => v,
                None => it
                    .next()
                    .ok_or_else(|| format!("option {name} needs a value"))?,
            }
        } else {
            if inline.is_some() {
                return Err(format!("option {name} takes no value"));
            }
            ""
        };
        match name {
            "-h" | "--help" => return Ok(Command::Help),
            "--" => options_done = true,
            "--tree" => tree = Some(parse_tree(value)?),
            "--start" => start = Some(parse_key(value, Key::MIN)?),
            "--end" => end = Some(parse_key(value, Key::MAX)?),
            "--mode" => mode = Mode::parse(value)?,
            "--repeat" => {
                repeat = parse_u64(value).map_err(|e| format!("bad --repeat count: {e}"))?;
                if repeat == 0 {
                    return Err("--repeat must be at least 1".to_string());
                }
            }
            "--detach" => detach = true,
            "--commit-root" => commit_root = true,
            "--json" => json = true,
            "--counters" => counters = true,
            _ => return Err(format!("unknown option '{arg}'")),
        }
    }

    if counters {
        if let Some(m) = mountpoint {
            return Err(format!(
                "--counters takes no MOUNTPOINT ('{m}'): the counters cover every filesystem"
            ));
        }
        if tree.is_some() || start.is_some() || end.is_some() {
            return Err("--counters cannot be combined with a request".to_string());
        }
        return Ok(Command::Counters { json });
    }
    let mountpoint = mountpoint.ok_or("missing MOUNTPOINT")?;
    let tree_id = tree.ok_or("missing --tree")?;
    let start = start.unwrap_or(Key::MIN);
    let end = end.unwrap_or(Key::MAX);
    if start > end {
        return Err(format!(
            "start key {start} is after end key {end} (keys compare by objectid, type, offset)"
        ));
    }
    if start == end {
        return Err(format!(
            "the range {start}..{end} is empty: the end key is exclusive"
        ));
    }
    if detach && mode != Mode::Readahead {
        return Err(format!(
            "--detach works only with --mode readahead, not {}",
            mode.name()
        ));
    }
    Ok(Command::Run(Options {
        mountpoint,
        tree_id,
        start,
        end,
        mode,
        detach,
        commit_root,
        json,
        repeat,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Options {
        match parse_args(args) {
            Ok(Command::Run(o)) => o,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn err(args: &[&str]) -> String {
        match parse_args(args) {
            Err(e) => e,
            other => panic!("{args:?} should fail: {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let o = run(&["/mnt", "--tree", "extent"]);
        assert_eq!(
            o,
            Options {
                mountpoint: "/mnt".into(),
                tree_id: 2,
                start: Key::MIN,
                end: Key::MAX,
                mode: Mode::Readahead,
                detach: false,
                commit_root: false,
                json: false,
                repeat: 1,
            }
        );
        assert_eq!(o.flags(), 0);
        let a = o.to_uapi();
        assert_eq!(a.tree_id, 2);
        assert_eq!(a.mode, uapi::BTRFS_READA_MODE_READAHEAD);
        assert_eq!(a.flags, 0);
        assert_eq!((a.start.objectid, a.start.type_, a.start.offset), (0, 0, 0));
        assert_eq!(
            (a.end.objectid, a.end.type_, a.end.offset),
            (u64::MAX, 255, u64::MAX)
        );
        assert_eq!(a.reserved_in, [0; 4]);
        assert_eq!(a.reserved_out, [0; 1]);
        assert_eq!(a.blocks_visited, 0);
    }

    #[test]
    fn everything() {
        let o = run(&[
            "--tree=csum",
            "--start",
            "0xfffffffffffffff6,EXTENT_CSUM,4096",
            "--end=max,extent_csum",
            "--mode",
            "readahead",
            "--detach",
            "--commit-root",
            "--json",
            "--repeat",
            "3",
            "/mnt/x",
        ]);
        assert_eq!(o.mountpoint, "/mnt/x");
        assert_eq!(o.tree_id, 7);
        assert_eq!(
            o.start,
            Key {
                objectid: 0xffff_ffff_ffff_fff6,
                type_: 128,
                offset: 4096
            }
        );
        assert_eq!(
            o.end,
            Key {
                objectid: u64::MAX,
                type_: 128,
                offset: u64::MAX
            }
        );
        assert!(o.detach && o.commit_root && o.json);
        assert_eq!(o.repeat, 3);
        assert_eq!(o.flags(), 3);
        assert_eq!(o.to_uapi().flags, 3);
    }

    #[test]
    fn modes() {
        for (name, m, v) in [
            ("readahead", Mode::Readahead, 0),
            ("plain", Mode::Plain, 1),
            ("forward", Mode::Forward, 2),
            ("forward-always", Mode::ForwardAlways, 3),
            ("PLAIN", Mode::Plain, 1),
        ] {
            let o = run(&["/m", "--tree", "fs", "--mode", name]);
            assert_eq!(o.mode, m);
            assert_eq!(o.to_uapi().mode, v);
        }
        assert!(err(&["/m", "--tree", "fs", "--mode", "fast"]).contains("unknown mode 'fast'"));
    }

    #[test]
    fn commit_root_flag_alone() {
        let o = run(&["/m", "--tree", "256", "--commit-root", "--mode=plain"]);
        assert_eq!(o.tree_id, 256);
        assert_eq!(o.flags(), uapi::BTRFS_READA_FLAG_COMMIT_ROOT);
    }

    #[test]
    fn help() {
        assert_eq!(parse_args(&["--help"]), Ok(Command::Help));
        assert_eq!(parse_args(&["-h"]), Ok(Command::Help));
        assert!(parse_args(&["/m", "--bogus-later", "--help"]).is_err());
        assert_eq!(
            parse_args(&["/m", "--help", "--bogus-later"]),
            Ok(Command::Help)
        );
        assert!(USAGE.starts_with("usage: reada MOUNTPOINT --tree TREE"));
        for opt in [
            "--tree",
            "--start",
            "--end",
            "--mode",
            "--detach",
            "--commit-root",
            "--json",
            "--repeat",
            "--help",
        ] {
            assert!(USAGE.contains(opt), "{opt}");
        }
    }

    #[test]
    fn double_dash() {
        let o = run(&["--tree", "fs", "--", "--weird-dir"]);
        assert_eq!(o.mountpoint, "--weird-dir");
        let o = run(&["-", "--tree", "fs"]);
        assert_eq!(o.mountpoint, "-");
    }

    #[test]
    fn equal_keys_are_an_empty_range() {
        let e = err(&["/m", "--tree", "fs", "--start", "5,1,0", "--end", "5,1,0"]);
        assert!(e.contains("is empty: the end key is exclusive"), "{e}");
    }

    #[test]
    fn start_after_end() {
        let e = err(&["/m", "--tree", "fs", "--start", "300", "--end", "256"]);
        assert!(e.contains("start key (300, 0, 0) is after end key"), "{e}");
        // Same objectid, higher type.
        let e = err(&[
            "/m",
            "--tree",
            "fs",
            "--start",
            "256,dir_index",
            "--end",
            "256,dir_item",
        ]);
        assert!(e.contains("after end key"), "{e}");
        // Same objectid and type, higher offset.
        let e = err(&[
            "/m", "--tree", "fs", "--start", "256,1,9", "--end", "256,1,8",
        ]);
        assert!(e.contains("after end key"), "{e}");
        // Against the defaults.
        assert!(
            err(&["/m", "--tree", "fs", "--end", "0,0,0", "--start", "0,0,1"])
                .contains("after end key")
        );
        // Empty ranges at either end of the key space.
        assert!(err(&["/m", "--tree", "fs", "--start", "max,max,max"]).contains("is empty"));
        assert!(err(&["/m", "--tree", "fs", "--end", "0,0,0"]).contains("is empty"));
        run(&["/m", "--tree", "fs", "--end", "0,0,1"]);
    }

    #[test]
    fn usage_errors() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "missing MOUNTPOINT"),
            (&["--tree", "fs"], "missing MOUNTPOINT"),
            (&["/m"], "missing --tree"),
            (&["/m", "/n", "--tree", "fs"], "unexpected argument '/n'"),
            (&["/m", "--tree"], "option --tree needs a value"),
            (
                &["/m", "--tree", "fs", "--start"],
                "option --start needs a value",
            ),
            (
                &["/m", "--tree", "fs", "--end"],
                "option --end needs a value",
            ),
            (
                &["/m", "--tree", "fs", "--mode"],
                "option --mode needs a value",
            ),
            (
                &["/m", "--tree", "fs", "--repeat"],
                "option --repeat needs a value",
            ),
            (&["/m", "--tree", "nope"], "unknown tree 'nope'"),
            (&["/m", "--tree", "fs", "--start", "1,2,3,4"], "bad key"),
            (&["/m", "--tree", "fs", "--end", "x"], "bad key"),
            (&["/m", "--tree", "fs", "--repeat", "0"], "at least 1"),
            (
                &["/m", "--tree", "fs", "--repeat", "-1"],
                "bad --repeat count",
            ),
            (
                &["/m", "--tree", "fs", "--repeat", "two"],
                "bad --repeat count",
            ),
            (
                &["/m", "--tree", "fs", "--json=yes"],
                "option --json takes no value",
            ),
            (&["/m", "--tree", "fs", "-x"], "unknown option '-x'"),
            (
                &["/m", "--tree", "fs", "--frobnicate"],
                "unknown option '--frobnicate'",
            ),
            (
                &["/m", "--tree", "fs", "--detach", "--mode", "plain"],
                "--detach works only with --mode readahead, not plain",
            ),
            (
                &["/m", "--tree", "fs", "--mode", "forward", "--detach"],
                "--detach works only with --mode readahead, not forward",
            ),
        ];
        for (args, want) in cases {
            let e = err(args);
            assert!(e.contains(want), "{args:?}: got '{e}', want '{want}'");
            assert!(!e.contains('\n'), "{args:?}: multi-line message");
        }
    }

    #[test]
    fn counters() {
        assert_eq!(
            parse_args(&["--counters"]),
            Ok(Command::Counters { json: false })
        );
        assert_eq!(
            parse_args(&["--json", "--counters"]),
            Ok(Command::Counters { json: true })
        );
        assert!(err(&["/mnt", "--counters"]).contains("takes no MOUNTPOINT"));
        assert!(err(&["--counters", "--tree", "extent"]).contains("cannot be combined"));
    }

    #[test]
    fn later_option_wins() {
        let o = run(&[
            "/m", "--tree", "fs", "--tree", "extent", "--mode", "plain", "--mode", "forward",
        ]);
        assert_eq!(o.tree_id, 2);
        assert_eq!(o.mode, Mode::Forward);
    }

    #[test]
    fn detach_with_readahead_mode() {
        let o = run(&["/m", "--tree", "extent", "--detach", "--mode", "readahead"]);
        assert_eq!(o.flags(), uapi::BTRFS_READA_FLAG_DETACH);
    }
}
