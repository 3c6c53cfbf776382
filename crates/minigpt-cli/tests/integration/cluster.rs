//! Sweeps on a cluster: `--shard auto` from a Slurm array's or a Kubernetes Indexed Job's
//! variables, completion records and what `merge` does with missing or unfinished shards, and
//! the committed Kubernetes manifests run locally, one process per index.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::{command, root, temp_dir};

/// Every scheduler variable `--shard auto` reads: removed from each test command, so a test
/// run inside a Slurm job or a pod sees only what it sets.
const VARS: [&str; 5] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_STEP",
    "JOB_COMPLETION_INDEX",
];

/// A task's scheduler variables.
type Env = Vec<(&'static str, String)>;

/// The binary with `args` and the scheduler variables `env` (and no others).
fn task(args: &[&str], env: &[(&str, String)]) -> Command {
    let mut c = command(args);
    for v in VARS {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn ok(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what}: exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A small sweep of the tiny character model: 3 prompts × (greedy + top-p at one temperature)
/// × 2 samples = 12 rows.
fn config(d: &Path) -> PathBuf {
    let text = format!(
        r#"
[experiment]
name = "cluster"
seed = 5
samples = 2
max_new_tokens = 10
batch_size = 2
[model]
path = "{}"
[prompts]
items = ["TORIA:", "to be, or not", "it is the east, and"]
[sweep]
temperatures = [0.9]
strategies = ["greedy", "top_p_0.9"]
strategies_dir = "{}"
"#,
        root().join("tests/fixtures/tiny-char-gelu").display(),
        root().join("configs/decode").display()
    );
    let p = d.join("sweep.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// `generations.csv` without its two timing columns, the header first.
fn rows(dir: &Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(dir.join("generations.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| header[i] != "seconds" && header[i] != "tokens_per_s")
        .collect();
    let pick = |rec: Vec<String>| keep.iter().map(|&i| rec[i].clone()).collect::<Vec<_>>();
    let mut all = vec![pick(header.clone())];
    for rec in r.records() {
        all.push(pick(rec.unwrap().iter().map(String::from).collect()));
    }
    all
}

/// An unsharded run of `cfg` into `d/whole`.
fn whole(cfg: &Path, d: &Path) -> PathBuf {
    let out = d.join("whole");
    let s = |p: &Path| p.display().to_string();
    ok(
        task(&["run", "--config", &s(cfg), "--out", &s(&out)], &[])
            .output()
            .unwrap(),
        "the unsharded run",
    );
    out
}

fn merge(out: &Path, parts: &[PathBuf], extra: &[&str]) -> Output {
    let out = out.display().to_string();
    let parts: Vec<String> = parts.iter().map(|p| p.display().to_string()).collect();
    let mut args = vec!["merge", "--out", &out];
    args.extend(extra);
    args.extend(parts.iter().map(String::as_str));
    task(&args, &[]).output().unwrap()
}

fn slurm(id: usize, min: usize, count: usize, step: Option<usize>) -> Env {
    let mut v = vec![
        ("SLURM_ARRAY_TASK_ID", id.to_string()),
        ("SLURM_ARRAY_TASK_MIN", min.to_string()),
        ("SLURM_ARRAY_TASK_COUNT", count.to_string()),
    ];
    if let Some(s) = step {
        v.push(("SLURM_ARRAY_TASK_STEP", s.to_string()));
    }
    v
}

#[test]
fn shard_auto_runs_slurm_arrays_and_indexed_jobs_into_one_root_that_merges_to_the_whole() {
    let guard = temp_dir("shard-auto");
    let d = guard.path();
    let cfg = config(d);
    let cfg_s = cfg.display().to_string();
    let want = rows(&whole(&cfg, d));
    // (name, each task's variables, extra arguments): a 1-based array (--array=1-3), a stepped
    // one (--array=0-8:4), and an Indexed Job of 3 completions.
    let schemes: Vec<(&str, Vec<Env>, Vec<&str>)> = vec![
        (
            "one-based",
            (1..=3).map(|i| slurm(i, 1, 3, None)).collect(),
            vec![],
        ),
        (
            "stepped",
            [0, 4, 8].map(|i| slurm(i, 0, 3, Some(4))).to_vec(),
            vec![],
        ),
        (
            "indexed",
            (0..3)
                .map(|i| vec![("JOB_COMPLETION_INDEX", i.to_string())])
                .collect(),
            vec!["--shards", "3"],
        ),
    ];
    for (name, tasks, extra) in schemes {
        let root_dir = d.join(name);
        let template = root_dir
            .join("shard-{shard}-of-{shards}")
            .display()
            .to_string();
        for env in &tasks {
            let mut args = vec![
                "run", "--config", &cfg_s, "--shard", "auto", "--out", &template,
            ];
            args.extend(&extra);
            let out = ok(task(&args, env).output().unwrap(), name);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("(from the scheduler's variables)"), "{err}");
        }
        let parts: Vec<PathBuf> = (1..=3)
            .map(|k| root_dir.join(format!("shard-{k}-of-3")))
            .collect();
        for p in &parts {
            let done: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(p.join("complete.json")).unwrap())
                    .unwrap();
            assert_eq!(done["rows"], 4, "{name}: {done}");
        }
        let merged = root_dir.join("merged");
        ok(merge(&merged, &parts, &[]), name);
        assert_eq!(
            rows(&merged),
            want,
            "{name}: merged rows differ from the whole run"
        );
        assert!(merged.join("complete.json").is_file(), "{name}");
    }
}

#[test]
fn shard_auto_refuses_missing_or_malformed_variables_before_writing() {
    let guard = temp_dir("shard-auto-bad");
    let d = guard.path();
    let cfg = config(d);
    let cfg_s = cfg.display().to_string();
    let out = d.join("out-{shard}");
    let out_s = out.display().to_string();
    let cases: Vec<(Env, Vec<&str>, &str)> = vec![
        (vec![], vec![], "SLURM_ARRAY_TASK_ID"),
        (vec![], vec![], "JOB_COMPLETION_INDEX"),
        (
            vec![("SLURM_ARRAY_TASK_ID", "two".into())],
            vec![],
            "SLURM_ARRAY_TASK_ID=\"two\"",
        ),
        (
            vec![("SLURM_ARRAY_TASK_ID", "3".into())],
            vec![],
            "SLURM_ARRAY_TASK_MIN is not",
        ),
        (slurm(5, 1, 4, None), vec![], "SLURM_ARRAY_TASK_ID=5"),
        (slurm(2, 0, 4, Some(4)), vec![], "SLURM_ARRAY_TASK_STEP=4"),
        (
            slurm(1, 0, 4, None),
            vec!["--shards", "3"],
            "SLURM_ARRAY_TASK_COUNT=4",
        ),
        (
            vec![("JOB_COMPLETION_INDEX", "0".into())],
            vec![],
            "add --shards N",
        ),
        (
            vec![("JOB_COMPLETION_INDEX", "4".into())],
            vec!["--shards", "4"],
            "JOB_COMPLETION_INDEX=4",
        ),
        (
            vec![("JOB_COMPLETION_INDEX", "-1".into())],
            vec!["--shards", "4"],
            "JOB_COMPLETION_INDEX=\"-1\"",
        ),
    ];
    for (env, extra, want) in cases {
        let mut args = vec![
            "run", "--config", &cfg_s, "--shard", "auto", "--out", &out_s,
        ];
        args.extend(&extra);
        let o = task(&args, &env).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{env:?}: {err}");
        assert!(err.contains(want), "{env:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    // --shards belongs to `auto`; {shard} needs a sharded run.
    for (args, want) in [
        (
            vec!["--shard", "1/2", "--shards", "2"],
            "--shards N goes with --shard auto",
        ),
        (vec![], "need a sharded run"),
    ] {
        let mut all = vec!["run", "--config", &cfg_s, "--out", &out_s];
        all.extend(&args);
        let o = task(&all, &[]).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "{err}");
    }
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["sweep.toml"], "nothing written");
}

#[test]
fn merge_names_missing_and_unfinished_shards_merges_partially_on_request_and_is_repeatable() {
    let guard = temp_dir("merge-partial");
    let d = guard.path();
    let cfg = config(d);
    let cfg_s = cfg.display().to_string();
    let part = |k: usize| d.join(format!("part{k}"));
    let run_shard = |k: usize| {
        let out = part(k).display().to_string();
        let shard = format!("{k}/3");
        ok(
            task(
                &["run", "--config", &cfg_s, "--shard", &shard, "--out", &out],
                &[],
            )
            .output()
            .unwrap(),
            "a shard",
        )
    };
    run_shard(1);
    run_shard(3);
    // Shard 2 is missing.
    let refused = merge(&d.join("m1"), &[part(1), part(3)], &[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains("shards 2 of 3 (no folder given)"), "{err}");
    assert!(err.contains("--allow-partial"), "{err}");
    assert!(!d.join("m1").exists(), "nothing written");
    // Shard 2 died halfway: its last row and its completion record are gone (as after a kill,
    // which never writes the record).
    run_shard(2);
    let gens = part(2).join("generations.csv");
    let text = std::fs::read_to_string(&gens).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.pop();
    std::fs::write(&gens, lines.join("\n") + "\n").unwrap();
    std::fs::remove_file(part(2).join("complete.json")).unwrap();
    let parts = [part(1), part(2), part(3)];
    let refused = merge(&d.join("m2"), &parts, &[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(
        err.contains("shard 2/3 in") && err.contains("(3 of 4 rows, no complete.json)"),
        "{err}"
    );
    assert!(!err.contains("shards 2 of 3"), "{err}");
    // --allow-partial merges the 11 rows there are and says what is missing.
    let partial = ok(
        merge(&d.join("m3"), &parts, &["--allow-partial"]),
        "partial",
    );
    let err = String::from_utf8_lossy(&partial.stderr);
    assert!(
        err.contains("merged 11 rows (1 of the grid's 12 are missing)"),
        "{err}"
    );
    assert!(err.contains("missing: shard 2/3 in"), "{err}");
    assert_eq!(rows(&d.join("m3")).len(), 12);
    assert!(!d.join("m3/complete.json").exists());
    // The rerun of shard 2 resumes its folder and completes it; then the merge goes through.
    let rerun = run_shard(2);
    let err = String::from_utf8_lossy(&rerun.stderr);
    assert!(
        err.contains("1 generated now") && err.contains("3 already there"),
        "{err}"
    );
    ok(merge(&d.join("m4"), &parts, &[]), "complete");
    let want = rows(&whole(&cfg, d));
    assert_eq!(rows(&d.join("m4")), want);
    // The merged run spans its shards: from the first one's start to the last one's finish.
    let info = |dir: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
    };
    let merged = info(&d.join("m4"));
    let shards: Vec<serde_json::Value> = parts.iter().map(|p| info(p)).collect();
    let earliest = shards
        .iter()
        .map(|i| i["meta"]["started"].as_str().unwrap())
        .min();
    let latest = shards.iter().map(|i| i["finished"].as_str().unwrap()).max();
    assert_eq!(merged["meta"]["started"].as_str(), earliest);
    assert_eq!(merged["finished"].as_str(), latest);
    // Merging again, seconds later, gives the same bytes, timestamps aside (the report's wall
    // time included: once it ran to the merge's own time, and differed).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    ok(merge(&d.join("m5"), &parts, &[]), "again");
    assert_same_folders(&d.join("m4"), &d.join("m5"));
}

/// Every file of two merged folders has the same bytes, once RFC 3339 timestamps are blanked.
fn assert_same_folders(a: &Path, b: &Path) {
    fn files(dir: &Path, under: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                files(&p, under, out);
            } else {
                out.push(p.strip_prefix(under).unwrap().to_path_buf());
            }
        }
    }
    let (mut fa, mut fb) = (vec![], vec![]);
    files(a, a, &mut fa);
    files(b, b, &mut fb);
    fa.retain(|p| !p.to_string_lossy().ends_with(".lock"));
    fb.retain(|p| !p.to_string_lossy().ends_with(".lock"));
    fa.sort();
    fb.sort();
    assert_eq!(fa, fb, "the same files");
    let blank = |bytes: Vec<u8>| -> Vec<u8> {
        let text = String::from_utf8_lossy(&bytes).to_string();
        // 2026-12-03T13:05:00Z
        let mut out = String::new();
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let t: String = chars[i..(i + 20).min(chars.len())].iter().collect();
            let stamp = t.len() == 20
                && t.chars().enumerate().all(|(j, c)| match j {
                    4 | 7 => c == '-',
                    10 => c == 'T',
                    13 | 16 => c == ':',
                    19 => c == 'Z',
                    _ => c.is_ascii_digit(),
                });
            if stamp {
                out.push_str("<time>");
                i += 20;
            } else {
                out.push(chars[i]);
                i += 1;
            }
        }
        out.into_bytes()
    };
    for f in &fa {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(
            blank(x) == blank(y),
            "{} differs between two merges of the same shards",
            f.display()
        );
    }
}

/// One Kubernetes manifest of `deploy/k8s`.
fn manifest(name: &str) -> yaml_rust2::Yaml {
    let path = root().join("deploy/k8s").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut docs = yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{name}: one document");
    docs.remove(0)
}

/// A Job's one container: its command (strings) and environment.
fn container(job: &yaml_rust2::Yaml) -> (Vec<String>, Vec<(String, String)>) {
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    let command = c["command"]
        .as_vec()
        .expect("a command list")
        .iter()
        .map(|v| v.as_str().expect("command items are strings").to_string())
        .collect();
    let env = c["env"]
        .as_vec()
        .map(|v| {
            v.iter()
                .map(|e| {
                    (
                        e["name"].as_str().unwrap().to_string(),
                        e["value"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (command, env)
}

#[test]
fn kubernetes_manifests_run_locally_one_process_per_index_then_merge() {
    let guard = temp_dir("k8s");
    let d = guard.path();
    // The shared volume, as the pods see it at /sweeps: the config under config/.
    let volume = d.join("sweeps");
    std::fs::create_dir_all(volume.join("config")).unwrap();
    let cfg = config(&volume.join("config"));
    // `minigpt` on the PATH, as in the image.
    let bin = d.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_minigpt"), bin.join("minigpt")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let local = |s: &str| s.replace("/sweeps", &volume.display().to_string());
    let pvc = manifest("pvc.yaml");
    let claim = pvc["metadata"]["name"].as_str().unwrap();
    for name in ["sweep-job.yaml", "merge-job.yaml", "prefetch-job.yaml"] {
        let job = manifest(name);
        assert_eq!(job["kind"].as_str(), Some("Job"), "{name}");
        let vols = &job["spec"]["template"]["spec"]["volumes"][0];
        assert_eq!(
            vols["persistentVolumeClaim"]["claimName"].as_str(),
            Some(claim),
            "{name} mounts the shared claim"
        );
    }

    let sweep = manifest("sweep-job.yaml");
    assert_eq!(sweep["spec"]["completionMode"].as_str(), Some("Indexed"));
    let completions = sweep["spec"]["completions"].as_i64().expect("completions") as usize;
    let (command, env) = container(&sweep);
    let shards_at = command
        .iter()
        .position(|a| a == "--shards")
        .expect("--shards");
    assert_eq!(
        command[shards_at + 1].parse::<usize>().ok(),
        Some(completions),
        "--shards equals the Job's completions"
    );
    assert!(command.windows(2).any(|w| w == ["--shard", "auto"]));
    for index in 0..completions {
        let mut c = Command::new(&command[0]);
        c.args(command[1..].iter().map(|a| local(a)));
        for v in VARS {
            c.env_remove(v);
        }
        for (k, v) in &env {
            c.env(k, local(v));
        }
        c.env("PATH", &path)
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .env("MINIGPT_CACHE_DIR", d.join("cache"));
        ok(c.output().unwrap(), &format!("pod {index}"));
    }
    let merge_job = manifest("merge-job.yaml");
    let (command, _) = container(&merge_job);
    let mut c = Command::new(&command[0]);
    c.args(command[1..].iter().map(|a| local(a)))
        .env("PATH", &path)
        .env("MINIGPT_CACHE_DIR", d.join("cache"));
    let merged_msg = ok(c.output().unwrap(), "the merge job");
    let err = String::from_utf8_lossy(&merged_msg.stderr);
    assert!(err.contains("merged 12 rows into"), "{err}");
    let merged = volume.join("out/merged");
    assert!(merged.join("complete.json").is_file());
    assert_eq!(rows(&merged), rows(&whole(&cfg, d)));
}

#[test]
fn slurm_recipes_run_on_a_real_single_node_slurm() {
    // scripts/slurm_check.sh: Debian's slurm-wlm and munge (installed by `.ci/run`), the
    // committed recipes, a task killed and requeued, and the merge against an unsharded run.
    use std::io::Write;
    let required = std::env::var_os("MINIGPT_REQUIRE_SLURM").is_some();
    let have = ["slurmctld", "slurmd", "munged"].iter().all(|p| {
        Command::new("sh")
            .args(["-c", &format!("command -v {p}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !have && !required {
        let _ = writeln!(
            std::io::stderr(),
            "note: slurm-wlm and munge are not installed: scripts/slurm_check.sh was not run \
             (.ci/run installs them; MINIGPT_REQUIRE_SLURM=1 makes their absence a failure)"
        );
        return;
    }
    let out = Command::new("bash")
        .arg(root().join("scripts/slurm_check.sh"))
        .arg(env!("CARGO_BIN_EXE_minigpt"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "slurm_check.sh failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("equality: merged == unsharded"), "{text}");
    assert!(text.contains("scontrol requeue"), "{text}");
    // Its account, past the harness's capture: job ids, states, the requeue, the check.
    let _ = writeln!(std::io::stderr(), "{text}");
}
