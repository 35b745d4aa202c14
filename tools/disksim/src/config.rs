//! Command-line parsing (no external dependencies).

use crate::flash::FlashParams;
use crate::model::{Params, MAX_CYLINDERS, SECTOR};
use crate::sched::Policy;
use std::path::PathBuf;

/// Usage text printed by `--help` and on errors.
pub const USAGE: &str = "\
usage: disksim --socket PATH --file PATH [--size BYTES] [options]
       disksim --sweep --size BYTES [model options] < EXTENTS

NBD server (unix socket, fixed newstyle, simple replies) whose single export
behaves like a rotating disk: every request sleeps for its simulated seek,
rotational latency, transfer time and command overhead.

  --socket PATH            unix socket to listen on (a stale file is replaced)
  --file PATH              backing file (sparse; created if missing)
  --size SIZE              export size, e.g. 536870912, 512M, 8G (K/M/G/T are
                           powers of 1024); required if --file does not exist;
                           a smaller existing file is extended, a larger one is
                           left alone and only SIZE bytes are exported
  --rpm N                  spindle speed [7200]
  --rate RATE              media transfer rate in bytes/s, K/M/G = 10^3/6/9,
                           Ki/Mi/Gi = 2^10/20/30 [150M]
  --track-to-track-ms MS   seek time for 1 cylinder [0.8]
  --avg-seek-ms MS         mean seek time over random seeks [8.5]
  --full-stroke-ms MS      seek time across the whole disk [16]
  --cylinders N            cylinder count [capacity / (heads * bytes per
                           track), min 64]
  --capacity SIZE          capacity of the whole drive, of which the export
                           is a region; the seek curve spans the drive [the
                           export size: the full stroke spans the export]
  --heads N                recording surfaces, tracks per cylinder [1]
  --region-start SIZE      where the export starts on the drive [0]
  --drive MODEL            a stated drive: hdd-4tb = a 4 TB 7200 rpm disk,
                           250 MB/s, 8 heads, seeks 0.8/8.5/16 ms, the export
                           at its start; ssd = a flash drive, 80 us access
                           latency, 8 requests at once, 500 MB/s; nvme =
                           80 us, 32 at once, 3 GB/s; none = no modelled
                           time at all, each request served as fast as the
                           backing file allows (an unslowed virtual disk,
                           with statistics); options after it override it
                           (--rate sets a flash drive's rate)
  --flash-latency-ms MS    a flash drive's access latency
  --flash-channels N       requests a flash drive serves at once
  --overhead-ms MS         per-command overhead, hidden when queued [0.1]
  --drive-readahead SIZE   drive read-ahead segment: a sequential request
                           arriving within SIZE/rate of the previous one's end
                           streams without seek/rotation; 0 = only queued
                           requests stream [2M]
  --cache-segments N       segments in the drive's buffer: after a read the
                           idle drive reads on into a segment (up to the
                           read-ahead size), and a later read wholly in a
                           kept segment, or in the one being filled, is
                           served from it without positioning; the N most
                           recent segments are kept; 0 = no buffer [16]
  --reorder none|sstf|sptf in-drive reordering: none (FIFO), shortest seek,
                           shortest positioning time [none]
  --speed-factor F         multiply all simulated times by F (0.25 = 4x faster)
                           [1.0]
  --fail-reads S:C         reads touching sectors S..S+C-1 (512-byte sectors)
                           fail with EIO; repeatable
  --stats PATH             write JSON statistics here on exit [stderr]
  --snapshots PATH         on SIGUSR1, append the statistics so far to PATH as
                           one JSON line (counters are cumulative; the disk
                           keeps serving) [stderr]
  --trace PATH             log every request served to PATH, one line each:
                           arrival start finish (simulated seconds), kind,
                           offset, length, seek distance, seek, rotation;
                           and a line # snapshot at each SIGUSR1
  --name NAME              disk name used in the statistics [basename of --file]
  --exit-on-disconnect     exit when a client that reached transmission
                           disconnects
  --fsync                  fdatasync the backing file on NBD FLUSH / FUA
  --sweep                  serve nothing: read extents (OFFSET LENGTH in
                           bytes, one per line) from stdin, time them in one
                           ascending sweep, all queued at once, with the model
                           options above (speed factor applied), and print
                           a JSON line: requests, bytes, seconds
  -h, --help               show this text

Statistics are written on SIGTERM/SIGINT (and with --exit-on-disconnect);
the process then exits 0. SIGUSR1 writes a snapshot and carries on.
";

/// Parsed configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Socket path.
    pub socket: PathBuf,
    /// Backing file path.
    pub file: PathBuf,
    /// Requested export size (None: use the existing file's size).
    pub size: Option<u64>,
    /// Model parameters (size filled in once the file is opened).
    pub params: Params,
    /// Reordering policy.
    pub reorder: Policy,
    /// Wall seconds per simulated second.
    pub speed_factor: f64,
    /// Injected read failures: (first sector, count).
    pub fail_reads: Vec<(u64, u64)>,
    /// Statistics path (None: stderr).
    pub stats: Option<PathBuf>,
    /// Where SIGUSR1 appends a statistics snapshot (None: stderr).
    pub snapshots: Option<PathBuf>,
    /// Where every request served is logged, one line each (None: nowhere).
    pub trace: Option<PathBuf>,
    /// Disk name.
    pub name: String,
    /// Exit after the first transmission-phase client leaves.
    pub exit_on_disconnect: bool,
    /// Sync the backing file on flush.
    pub fsync: bool,
    /// A flash drive instead of a rotating disk (`--drive ssd|nvme`).
    pub flash: Option<FlashParams>,
}

/// Sets the parameters of a named drive model (`--drive`).
fn drive_model(params: &mut Params, name: &str) -> Result<(), String> {
    match name {
        "hdd-4tb" => {
            params.rpm = 7200.0;
            params.rate = 250e6;
            params.track_to_track_ms = 0.8;
            params.avg_seek_ms = 8.5;
            params.full_stroke_ms = 16.0;
            params.capacity = Some(4_000_000_000_000);
            params.heads = 8;
            params.region_start = 0;
            params.cylinders = None;
            Ok(())
        }
        _ => Err(format!("--drive: unknown model {name:?} (known: hdd-4tb)")),
    }
}

/// Parses a size with binary suffixes: `4096`, `512K`, `512M`, `8G`, `1T`,
/// optionally followed by `B` or `iB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("bad size suffix in {s:?}")),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    let n: u64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} overflows"))
}

/// Parses a rate: decimal suffixes K/M/G (10^3, 10^6, 10^9), binary suffixes
/// Ki/Mi/Gi, optional trailing `B` or `B/s`.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    let t = t.strip_suffix('B').unwrap_or(t);
    let (num, mult) = if let Some(n) = t.strip_suffix("Ki") {
        (n, 1024.0)
    } else if let Some(n) = t.strip_suffix("Mi") {
        (n, 1024.0 * 1024.0)
    } else if let Some(n) = t.strip_suffix("Gi") {
        (n, 1024.0 * 1024.0 * 1024.0)
    } else if let Some(n) = t.strip_suffix(['K', 'k']) {
        (n, 1e3)
    } else if let Some(n) = t.strip_suffix('M') {
        (n, 1e6)
    } else if let Some(n) = t.strip_suffix('G') {
        (n, 1e9)
    } else {
        (t, 1.0)
    };
    let n: f64 = num.parse().map_err(|_| format!("bad rate {s:?}"))?;
    let r = n * mult;
    if r.is_finite() && r > 0.0 {
        Ok(r)
    } else {
        Err(format!("rate {s:?} must be positive"))
    }
}

fn parse_f64(opt: &str, v: &str) -> Result<f64, String> {
    match v.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(format!("{opt}: bad number {v:?}")),
    }
}

fn parse_range(v: &str) -> Result<(u64, u64), String> {
    let (a, b) = v
        .split_once(':')
        .ok_or_else(|| format!("--fail-reads: expected START:COUNT, got {v:?}"))?;
    let start = a
        .trim()
        .parse()
        .map_err(|_| format!("--fail-reads: bad sector {a:?}"))?;
    let count = b
        .trim()
        .parse()
        .map_err(|_| format!("--fail-reads: bad count {b:?}"))?;
    Ok((start, count))
}

/// Result of parsing: run with a configuration, or print help.
#[derive(Debug)]
pub enum Parsed {
    /// Run the server.
    Run(Box<Config>),
    /// `--sweep`: time extents read from stdin in one ascending sweep.
    Sweep(Box<SweepConfig>),
    /// `--help` was given.
    Help,
}

/// What `--sweep` needs: the model and the speed factor.
#[derive(Clone, Debug)]
pub struct SweepConfig {
    /// Model parameters, the size included.
    pub params: Params,
    /// Wall seconds per simulated second.
    pub speed_factor: f64,
}

/// Parses the arguments (without the program name).
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Parsed, String> {
    let mut socket = None;
    let mut file = None;
    let mut size = None;
    let mut params = Params::default();
    let mut reorder = Policy::Fifo;
    let mut speed_factor = 1.0;
    let mut fail_reads = Vec::new();
    let mut stats = None;
    let mut snapshots = None;
    let mut trace = None;
    let mut name = None;
    let mut exit_on_disconnect = false;
    let mut fsync = false;
    let mut sweep = false;
    let mut flash: Option<FlashParams> = None;
    let mut rate = None;

    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (opt, inline) = match arg.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        match opt.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--exit-on-disconnect" => {
                exit_on_disconnect = true;
                continue;
            }
            "--fsync" => {
                fsync = true;
                continue;
            }
            "--sweep" => {
                sweep = true;
                continue;
            }
            _ => {}
        }
        let mut value = || -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it.next().ok_or_else(|| format!("{opt} needs a value")),
            }
        };
        match opt.as_str() {
            "--socket" => socket = Some(PathBuf::from(value()?)),
            "--file" => file = Some(PathBuf::from(value()?)),
            "--size" => size = Some(parse_size(&value()?)?),
            "--rpm" => params.rpm = parse_f64(&opt, &value()?)?,
            "--rate" => rate = Some(parse_rate(&value()?)?),
            "--track-to-track-ms" => params.track_to_track_ms = parse_f64(&opt, &value()?)?,
            "--avg-seek-ms" => params.avg_seek_ms = parse_f64(&opt, &value()?)?,
            "--full-stroke-ms" => params.full_stroke_ms = parse_f64(&opt, &value()?)?,
            "--cylinders" => {
                let v = value()?;
                let n: u64 = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("--cylinders: bad number {v:?}"))?;
                if !(4..=MAX_CYLINDERS).contains(&n) {
                    return Err(format!("--cylinders must be in 4..={MAX_CYLINDERS}"));
                }
                params.cylinders = Some(n);
            }
            "--capacity" => params.capacity = Some(parse_size(&value()?)?),
            "--heads" => {
                let v = value()?;
                params.heads = v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("--heads: bad number {v:?}"))?;
            }
            "--region-start" => params.region_start = parse_size(&value()?)?,
            "--drive" => {
                let v = value()?;
                match v.as_str() {
                    "ssd" => flash = Some(FlashParams::default()),
                    "nvme" => {
                        flash = Some(FlashParams {
                            latency_ms: 0.08,
                            channels: 32,
                            rate: 3e9,
                        })
                    }
                    "none" => flash = Some(FlashParams::unslowed()),
                    _ => {
                        flash = None;
                        drive_model(&mut params, &v)?;
                    }
                }
                rate = None;
            }
            "--flash-latency-ms" => {
                let v = parse_f64(&opt, &value()?)?;
                flash
                    .as_mut()
                    .ok_or("--flash-latency-ms needs --drive ssd|nvme first")?
                    .latency_ms = v;
            }
            "--flash-channels" => {
                let v = value()?;
                let n = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("--flash-channels: bad number {v:?}"))?;
                flash
                    .as_mut()
                    .ok_or("--flash-channels needs --drive ssd|nvme first")?
                    .channels = n;
            }
            "--overhead-ms" => params.overhead_ms = parse_f64(&opt, &value()?)?,
            "--drive-readahead" => params.readahead = parse_size(&value()?)?,
            "--cache-segments" => {
                let v = value()?;
                params.cache_segments = v
                    .parse()
                    .map_err(|_| format!("--cache-segments: bad number {v:?}"))?;
            }
            "--reorder" => {
                let v = value()?;
                reorder =
                    Policy::parse(&v).ok_or_else(|| format!("--reorder: unknown policy {v:?}"))?;
            }
            "--speed-factor" => {
                speed_factor = parse_f64(&opt, &value()?)?;
                if speed_factor <= 0.0 {
                    return Err("--speed-factor must be positive".into());
                }
            }
            "--fail-reads" => fail_reads.push(parse_range(&value()?)?),
            "--stats" => stats = Some(PathBuf::from(value()?)),
            "--snapshots" => snapshots = Some(PathBuf::from(value()?)),
            "--trace" => trace = Some(PathBuf::from(value()?)),
            "--name" => name = Some(value()?),
            _ => return Err(format!("unknown option {arg:?}")),
        }
    }
    if let Some(r) = rate {
        match flash.as_mut() {
            Some(f) => f.rate = r,
            None => params.rate = r,
        }
    }
    if let Some(s) = size {
        if s == 0 || s % SECTOR != 0 {
            return Err(format!("--size must be a positive multiple of {SECTOR}"));
        }
    }
    if sweep {
        if flash.is_some() {
            return Err("--sweep models a rotating disk, not --drive ssd|nvme".into());
        }
        params.size = size.ok_or("--sweep needs --size")?;
        return Ok(Parsed::Sweep(Box::new(SweepConfig {
            params,
            speed_factor,
        })));
    }
    let socket = socket.ok_or("--socket is required")?;
    let file = file.ok_or("--file is required")?;
    let name = name.unwrap_or_else(|| {
        file.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "disk".into())
    });
    Ok(Parsed::Run(Box::new(Config {
        socket,
        file,
        size,
        params,
        reorder,
        speed_factor,
        fail_reads,
        stats,
        snapshots,
        trace,
        name,
        exit_on_disconnect,
        fsync,
        flash,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn sizes_and_rates() {
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("8G").unwrap(), 8 << 30);
        assert_eq!(parse_size("8GiB").unwrap(), 8 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("12X").is_err());
        assert_eq!(parse_rate("150M").unwrap(), 150e6);
        assert_eq!(parse_rate("100MiB/s").unwrap(), 100.0 * 1048576.0);
        assert!(parse_rate("-1").is_err());
    }

    #[test]
    fn full_command_line() {
        let p = parse_args(args(
            "--socket /tmp/s --file /tmp/f --size 512M --rpm 5400 --rate=100M \
             --reorder sstf --speed-factor 0.25 --fail-reads 8:16 --fail-reads 100:1 \
             --stats /tmp/st --snapshots /tmp/sn --trace /tmp/tr --name d0 --exit-on-disconnect --cylinders 1000 --drive-readahead 0 --cache-segments 4",
        ))
        .unwrap();
        let Parsed::Run(c) = p else { panic!("help") };
        assert_eq!(c.size, Some(512 << 20));
        assert_eq!(c.params.rpm, 5400.0);
        assert_eq!(c.params.rate, 100e6);
        assert_eq!(c.reorder, Policy::Sstf);
        assert_eq!(c.speed_factor, 0.25);
        assert_eq!(c.fail_reads, vec![(8, 16), (100, 1)]);
        assert_eq!(c.name, "d0");
        assert_eq!(c.snapshots, Some(PathBuf::from("/tmp/sn")));
        assert_eq!(c.trace, Some(PathBuf::from("/tmp/tr")));
        assert!(c.exit_on_disconnect);
        assert_eq!(c.params.cylinders, Some(1000));
        assert_eq!(c.params.readahead, 0);
        assert_eq!(c.params.cache_segments, 4);
        assert!(parse_args(args("--socket /s --file /f --cache-segments x")).is_err());
        assert!(parse_args(args("--socket /s")).is_err());
        assert!(parse_args(args("--socket /s --file /f --bogus")).is_err());
        assert!(matches!(parse_args(args("--help")).unwrap(), Parsed::Help));
        let Parsed::Sweep(w) = parse_args(args("--sweep --size 2G --speed-factor 4")).unwrap()
        else {
            panic!("not a sweep")
        };
        assert_eq!((w.params.size, w.speed_factor), (2 << 30, 4.0));
        assert!(parse_args(args("--sweep")).is_err());
    }

    #[test]
    fn drive_geometry_options() {
        let Parsed::Sweep(w) = parse_args(args(
            "--sweep --size 2G --drive hdd-4tb --heads 4 --region-start 1T",
        ))
        .unwrap() else {
            panic!("not a sweep")
        };
        assert_eq!(w.params.capacity, Some(4_000_000_000_000));
        assert_eq!(w.params.rate, 250e6);
        assert_eq!(w.params.heads, 4, "an option after --drive overrides it");
        assert_eq!(w.params.region_start, 1 << 40);
        let Parsed::Sweep(w) = parse_args(args("--sweep --size 2G --capacity 1T")).unwrap() else {
            panic!("not a sweep")
        };
        assert_eq!((w.params.capacity, w.params.heads), (Some(1 << 40), 1));
        assert!(parse_args(args("--sweep --size 2G --drive floppy")).is_err());
        assert!(parse_args(args("--sweep --size 2G --heads 0")).is_err());
    }

    #[test]
    fn flash_drive_options() {
        let run = |a: &str| match parse_args(args(&format!("--socket /s --file /f {a}"))) {
            Ok(Parsed::Run(c)) => Ok(c),
            Ok(_) => panic!("not a run"),
            Err(e) => Err(e),
        };
        let c = run("--drive ssd").unwrap();
        assert_eq!(c.flash, Some(FlashParams::default()));
        let c = run("--drive nvme --rate 2G --flash-channels 16 --flash-latency-ms 0.1").unwrap();
        let f = c.flash.unwrap();
        assert_eq!((f.rate, f.channels, f.latency_ms), (2e9, 16, 0.1));
        assert_eq!(
            c.params.rate,
            Params::default().rate,
            "--rate went to the flash drive"
        );
        let c = run("--rate 100M --drive hdd-4tb").unwrap();
        assert_eq!((c.flash, c.params.rate), (None, 250e6));
        assert!(run("--flash-channels 4").is_err());
        assert!(parse_args(args("--sweep --size 1G --drive ssd")).is_err());
        let c = run("--drive none").unwrap();
        assert_eq!(c.flash, Some(FlashParams::unslowed()));
    }
}
