//! The corpus of bad environment files under tests/bad-env/: each must be
//! refused with exit code 2, no panic, nothing written, and exactly the
//! message in its snapshot (tests/snapshots/bad_env__*.snap).

use assert_cmd::Command;

#[test]
fn every_bad_env_file_gets_its_error() {
    let mut files: Vec<_> = std::fs::read_dir("tests/bad-env")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 70, "the corpus has {} files; it must keep at least 70", files.len());
    let state = tempfile::tempdir().unwrap();
    for file in files {
        let out_dir = state.path().join("out");
        let out = Command::cargo_bin("provision")
            .unwrap()
            .args(["render", "--env"])
            .arg(&file)
            .arg("--out")
            .arg(&out_dir)
            .arg("--state-dir")
            .arg(state.path().join("state"))
            .env_remove("OS_CLOUD")
            .env_remove("OS_AUTH_URL")
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        assert_eq!(out.status.code(), Some(2), "{name}: exit code; stderr:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{name} panicked:\n{stderr}");
        assert!(out.stdout.is_empty(), "{name}: nothing on stdout for a human error");
        assert!(!out_dir.exists(), "{name}: a bundle was written for bad input");
        assert!(
            stderr.contains(&format!("error: {}", file.display())),
            "{name}: the error must name the file:\n{stderr}"
        );
        let errors: String = stderr.lines().filter(|l| !l.starts_with("warning:")).collect::<Vec<_>>().join("\n");
        insta::assert_snapshot!(name, errors);
    }
}

#[test]
fn json_errors_carry_file_line_column_key_and_hint() {
    let out = Command::cargo_bin("provision")
        .unwrap()
        .args(["render", "--output", "json", "--env", "tests/bad-env/01-typo-server_flavor.yml", "--out"])
        .arg(tempfile::tempdir().unwrap().path().join("o"))
        .env_remove("OS_CLOUD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 2);
    let p = &v["problems"][0];
    assert_eq!(p["file"], "tests/bad-env/01-typo-server_flavor.yml");
    assert_eq!((p["line"].as_u64(), p["column"].as_u64()), (Some(5), Some(3)));
    assert_eq!(p["key"], "sever_flavor");
    assert_eq!(p["hint"], "did you mean `server_flavor`?");
}
