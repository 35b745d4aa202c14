//! `fill-files DIR N SIZE`: creates DIR and writes N files `f0` .. `fN-1`
//! of SIZE bytes each, pseudo-random so that btrfs neither inlines nor
//! shares them. One process instead of one `head -c` per file: on the KASAN
//! test kernel under TCG, spawning a process per file dominated the time
//! to populate a test filesystem.

use std::fs;
use std::io::Write;
use std::process::ExitCode;

/// xorshift64*, seeded from the clock and the arguments: different bytes
/// every run, no dependency.
struct Rng(u64);

impl Rng {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let [dir, n, size] = args else {
        return Err("usage: fill-files DIR N SIZE".into());
    };
    let n: u64 = n.parse().map_err(|_| format!("bad count {n:?}"))?;
    let size: usize = size.parse().map_err(|_| format!("bad size {size:?}"))?;
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {dir}: {e}"))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut rng = Rng(nanos | 1);
    let mut buf = vec![0u8; size];
    for i in 0..n {
        rng.fill(&mut buf);
        let path = format!("{dir}/f{i}");
        fs::File::create(&path)
            .and_then(|mut f| f.write_all(&buf))
            .map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fill-files: {e}");
            ExitCode::FAILURE
        }
    }
}
