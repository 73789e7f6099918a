//! `--shard K/N`: the entries this run takes, so that N runs (a Slurm job array, a Kubernetes
//! Indexed Job, N shell loops) split one list with no coordination. An entry belongs to shard
//! `h mod N`, where `h` is the first 8 bytes, big-endian, of the SHA-256 of its key: its `out=`
//! path as written when it has one, else its URL as written. That depends on nothing but the
//! entry, so any run can take any shard, the order of lines does not matter, and the N shards
//! together take every entry exactly once. The name wins over the URL because it is what stays
//! the same when a list is made again: signed URLs get fresh signatures, the file names do not.
//! (Python, to check: `int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % N`.)

use sha2::{Digest, Sha256};

/// Shard `index` of `count` (`0 <= index < count`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

/// What `--shard` was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardSpec {
    Fixed(Shard),
    /// K and N from the environment the run was started in ([`Shard::from_env`]).
    Auto,
}

impl ShardSpec {
    pub fn parse(text: &str) -> Result<ShardSpec, String> {
        if text == "auto" {
            return Ok(ShardSpec::Auto);
        }
        Shard::parse(text).map(ShardSpec::Fixed)
    }

    /// The shard, reading the environment for `auto` through `var`.
    pub fn resolve(self, var: impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
        match self {
            ShardSpec::Fixed(shard) => Ok(shard),
            ShardSpec::Auto => Shard::from_env(var),
        }
    }
}

impl Shard {
    /// `K/N`, K counted from 0 as job arrays and indexed jobs count.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = |why: &str| format!("shard {text:?}: {why}");
        let (k, n) = text
            .split_once('/')
            .ok_or_else(|| bad("want K/N (K from 0 to N-1) or auto"))?;
        let number = |s: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| bad("K and N are numbers"))
        };
        let (index, count) = (number(k)?, number(n)?);
        if count == 0 {
            return Err(bad("N must be at least 1"));
        }
        if index >= count {
            return Err(bad(&format!(
                "K counts from 0, so it must be below {count}"
            )));
        }
        Ok(Shard { index, count })
    }

    /// `FASTDL_SHARD=K/N`; else a Slurm job array (`SLURM_ARRAY_TASK_ID` counted from
    /// `SLURM_ARRAY_TASK_MIN` in steps of `SLURM_ARRAY_TASK_STEP`, over
    /// `SLURM_ARRAY_TASK_COUNT` tasks, or MIN to MAX); else a Kubernetes Indexed Job
    /// (`JOB_COMPLETION_INDEX`, with its completions in `FASTDL_SHARD_COUNT`: Kubernetes does
    /// not put the count in the environment).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
        let number = |name: &str| -> Result<Option<u64>, String> {
            var(name)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| format!("--shard auto: {name}={v:?} is not a number"))
                })
                .transpose()
        };
        if let Some(text) = var("FASTDL_SHARD") {
            return Shard::parse(&text).map_err(|e| format!("--shard auto: FASTDL_SHARD: {e}"));
        }
        if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let step = number("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
            let count = match (
                number("SLURM_ARRAY_TASK_COUNT")?,
                number("SLURM_ARRAY_TASK_MAX")?,
            ) {
                (Some(count), _) => count,
                (None, Some(max)) if max >= min => (max - min) / step + 1,
                _ => {
                    return Err("--shard auto: SLURM_ARRAY_TASK_ID is set without \
                                SLURM_ARRAY_TASK_COUNT or SLURM_ARRAY_TASK_MAX"
                        .into())
                }
            };
            if id < min || (id - min) % step != 0 {
                return Err(format!(
                    "--shard auto: SLURM_ARRAY_TASK_ID={id} is not in the array from {min} in \
                     steps of {step}"
                ));
            }
            return Shard::parse(&format!("{}/{count}", (id - min) / step))
                .map_err(|e| format!("--shard auto (Slurm): {e}"));
        }
        if let Some(index) = number("JOB_COMPLETION_INDEX")? {
            let count = number("FASTDL_SHARD_COUNT")?.ok_or(
                "--shard auto: JOB_COMPLETION_INDEX is set but not the shard count; set \
                 FASTDL_SHARD_COUNT to the Job's completions",
            )?;
            return Shard::parse(&format!("{index}/{count}"))
                .map_err(|e| format!("--shard auto (Kubernetes): {e}"));
        }
        Err(
            "--shard auto: no shard in the environment; run it in a Slurm job array or a \
             Kubernetes Indexed Job, or set FASTDL_SHARD=K/N"
                .into(),
        )
    }

    /// Whether the entry with this key (see the module docs) is this shard's.
    pub fn takes(&self, key: &str) -> bool {
        let digest = Sha256::digest(key.as_bytes());
        let h = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        h % self.count == self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn shards_are_read_from_flags_and_engines() {
        let s = |index, count| Ok(Shard { index, count });
        for (text, want) in [("0/4", s(0, 4)), ("3/4", s(3, 4)), ("0/1", s(0, 1))] {
            assert_eq!(Shard::parse(text), want, "{text}");
        }
        for bad in ["4/4", "1/0", "x/2", "2", "-1/3", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        type Vars<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(Vars, Result<Shard, String>)] = &[
            (
                &[("FASTDL_SHARD", "2/5"), ("SLURM_ARRAY_TASK_ID", "0")],
                s(2, 5),
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "3"),
                    ("SLURM_ARRAY_TASK_COUNT", "4"),
                ],
                s(3, 4),
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "12"),
                    ("SLURM_ARRAY_TASK_MIN", "10"),
                    ("SLURM_ARRAY_TASK_MAX", "13"),
                ],
                s(2, 4),
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "4"),
                    ("SLURM_ARRAY_TASK_MIN", "0"),
                    ("SLURM_ARRAY_TASK_MAX", "6"),
                    ("SLURM_ARRAY_TASK_STEP", "2"),
                ],
                s(2, 4),
            ),
            (
                &[("JOB_COMPLETION_INDEX", "1"), ("FASTDL_SHARD_COUNT", "3")],
                s(1, 3),
            ),
        ];
        for (vars, want) in cases {
            assert_eq!(&Shard::from_env(env(vars)), want, "{vars:?}");
        }
        for vars in [
            &[][..],
            &[("JOB_COMPLETION_INDEX", "1")][..],
            &[("SLURM_ARRAY_TASK_ID", "1")][..],
            &[
                ("SLURM_ARRAY_TASK_ID", "x"),
                ("SLURM_ARRAY_TASK_COUNT", "2"),
            ][..],
            &[
                ("SLURM_ARRAY_TASK_ID", "5"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
            ][..],
        ] {
            let e = Shard::from_env(env(vars)).unwrap_err();
            assert!(e.starts_with("--shard auto"), "{vars:?}: {e}");
        }
    }

    #[test]
    fn every_key_is_taken_by_exactly_one_shard() {
        for count in [1, 2, 3, 4, 7] {
            let shards: Vec<Shard> = (0..count).map(|index| Shard { index, count }).collect();
            let mut sizes = vec![0; count as usize];
            for i in 0..2000 {
                let key = format!("https://h/f{i}.bin");
                let taking: Vec<_> = shards.iter().filter(|s| s.takes(&key)).collect();
                assert_eq!(taking.len(), 1, "{key} in {count} shards");
                sizes[taking[0].index as usize] += 1;
            }
            // Spread evenly enough to be worth splitting (expected 2000/count each).
            let even = 2000 / count as usize;
            assert!(sizes.iter().all(|&n| n > even * 3 / 4), "{sizes:?}");
        }
        // Shards must not move between versions: these are the documented rule's answers, from
        // Python's hashlib (the module docs' one-liner), for N = 2, 3, 4, 7, 1000.
        for (key, want) in [
            ("https://h/f0.bin", [0, 2, 0, 1, 480]),
            ("videos/a.mp4", [1, 2, 1, 6, 781]),
            ("https://example.com/x?sig=1", [1, 1, 1, 2, 941]),
        ] {
            for (count, index) in [2, 3, 4, 7, 1000].into_iter().zip(want) {
                assert!(
                    Shard { index, count }.takes(key),
                    "{key} in {index}/{count}"
                );
            }
        }
    }
}
