//! A property test: whatever bytes an environment file holds, the parser
//! answers with parameters or problems, and never panics. The inputs are
//! valid files mutated at random (flipped, inserted, deleted and duplicated
//! bytes, YAML punctuation, truncation), from a seeded generator so a
//! failure can be replayed with PROVISION_FUZZ_SEED.
// A test reads its knobs (seeds, paths) from the environment itself.
#![allow(clippy::disallowed_methods)]

use std::path::Path;

use provision::params::Params;
use provision::params::envfile::EnvFile;

const VALID: &[&str] = &[
    include_str!("../examples/env_params.yml"),
    "parameter_defaults:\n  worker_count: 3\n  docker_mtu: 1450\nparameters:\n  hostname: a\n  domain: b.c\n  server_key: k\n  server_flavor: f\n  server_image: i\n  fip_network: n\nresource_registry:\n  OS::Foo: foo.yaml\n",
    "parameters: {hostname: \"x\", domain: 'y.z', worker_count: [1, {a: b}], os_password: !!str 12}\n",
    "parameters:\n  hostname: &h myhost\n  domain: *h\n  server_key: |\n    multi\n    line\n",
];

const PUNCTUATION: &[&[u8]] = &[
    b":",
    b"-",
    b"\n",
    b" ",
    b"\t",
    b"{",
    b"}",
    b"[",
    b"]",
    b"&a",
    b"*a",
    b"!!",
    b"'",
    b"\"",
    b"#",
    b"|",
    b">",
    b"? ",
    b"---\n",
    b"...\n",
    b"<<: ",
    b"%YAML 1.2\n",
    b"\xff",
    b"\xc3",
    b"\0",
    b"9999999999999999999999",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: small, fast, and enough to spread mutations.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(6) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                let p = PUNCTUATION[rng.below(PUNCTUATION.len())];
                v.splice(at..at, p.iter().copied());
            }
            2 if at < v.len() => {
                let end = (at + rng.below(20)).min(v.len());
                v.drain(at..end);
            }
            3 => v.truncate(at),
            4 if at < v.len() => {
                let end = (at + rng.below(40)).min(v.len());
                let chunk = v[at..end].to_vec();
                let to = rng.below(v.len() + 1);
                v.splice(to..to, chunk);
            }
            _ => v.insert(at, rng.below(256) as u8),
        }
    }
    v
}

#[test]
fn the_parser_never_panics() {
    let seed: u64 = std::env::var("PROVISION_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_f00d);
    let rounds: usize = std::env::var("PROVISION_FUZZ_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(4000);
    let mut rng = Rng(seed);
    let (mut ok, mut refused) = (0, 0);
    for round in 0..rounds {
        let base = VALID[round % VALID.len()].as_bytes();
        let bytes = mutate(&mut rng, base);
        let text = String::from_utf8_lossy(&bytes).to_string();
        let result = std::panic::catch_unwind(|| match EnvFile::parse(Path::new("fuzz.yml"), &text) {
            Ok(f) => Params::from_files(&[f]).map(|_| ()).map_err(|e| e.to_string()),
            Err(problems) => Err(problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")),
        });
        match result {
            Ok(Ok(())) => ok += 1,
            Ok(Err(message)) => {
                refused += 1;
                // The operator reads these; Rust and serde words mean nothing
                // to them. What is between backticks is the file's own text.
                let message: String = message.split('`').step_by(2).collect();
                for jargon in ["serde", "Option<", "from_str", "budget breached", "deserializ", "String"] {
                    assert!(
                        !message.contains(jargon),
                        "`{jargon}` on round {round} (seed {seed}):\n{message}\n{text:?}"
                    );
                }
            }
            Err(_) => panic!("the parser panicked on round {round} (seed {seed}):\n{text:?}"),
        }
    }
    // The mutations must actually reach both outcomes, or the test proves little.
    assert!(ok > 0 && refused > rounds / 4, "ok {ok}, refused {refused}");
}
