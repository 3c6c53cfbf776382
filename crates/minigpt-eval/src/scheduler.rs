//! Which shard a cluster task runs (`--shard auto`): from a Slurm job array's variables, or a
//! Kubernetes Indexed Job's completion index with the shard count given on the command line.

/// The variables read, for messages.
const SLURM: &str = "SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT \
                     (and SLURM_ARRAY_TASK_STEP for a stepped array)";
const K8S: &str = "JOB_COMPLETION_INDEX";

/// Shard `(K, N)` (1 ≤ K ≤ N, as `--shard K/N`) of this task, from the environment `var`
/// (a function, so tests need not touch the process's environment).
///
/// - A Slurm array task: index `(SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN) /
///   SLURM_ARRAY_TASK_STEP` (step 1 when unset) of `SLURM_ARRAY_TASK_COUNT`, so arrays that
///   start at 0 or 1 (`--array=1-4`) and stepped ones (`--array=0-12:4`) all give shards 1..N.
///   `shards`, when given, must equal the count.
/// - A Kubernetes Indexed Job: `JOB_COMPLETION_INDEX` (from 0) of `shards`, which must be given
///   (`--shards N`: Kubernetes does not expose `completions` to the pod).
///
/// Errors name the variables to set or the value that is wrong.
pub fn shard_from_env(
    shards: Option<usize>,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<(usize, usize), String> {
    if let Some(id) = var("SLURM_ARRAY_TASK_ID") {
        let number = |name: &str, value: Option<String>| -> Result<usize, String> {
            let value = value.ok_or_else(|| {
                format!("--shard auto: SLURM_ARRAY_TASK_ID is set but {name} is not (set {SLURM})")
            })?;
            value.trim().parse().map_err(|_| {
                format!("--shard auto: {name}={value:?} is not a whole number (set {SLURM})")
            })
        };
        let id = number("SLURM_ARRAY_TASK_ID", Some(id))?;
        let min = number("SLURM_ARRAY_TASK_MIN", var("SLURM_ARRAY_TASK_MIN"))?;
        let count = number("SLURM_ARRAY_TASK_COUNT", var("SLURM_ARRAY_TASK_COUNT"))?;
        let step = match var("SLURM_ARRAY_TASK_STEP") {
            Some(s) => number("SLURM_ARRAY_TASK_STEP", Some(s))?,
            None => 1,
        };
        let offset = id.checked_sub(min).filter(|_| step > 0 && count > 0);
        let index = offset.filter(|o| o % step == 0).map(|o| o / step);
        let index = index.filter(|&i| i < count).ok_or_else(|| {
            format!(
                "--shard auto: SLURM_ARRAY_TASK_ID={id} is not task (ID − MIN) / STEP < COUNT of \
                 an array with SLURM_ARRAY_TASK_MIN={min}, SLURM_ARRAY_TASK_STEP={step}, \
                 SLURM_ARRAY_TASK_COUNT={count}: submit the array as --array=FIRST-LAST[:STEP] \
                 (a list of indices with gaps cannot be mapped to shards)"
            )
        })?;
        if let Some(n) = shards
            && n != count
        {
            return Err(format!(
                "--shard auto: --shards {n} but the Slurm array has SLURM_ARRAY_TASK_COUNT={count} \
                 tasks: drop --shards, or submit {n} tasks"
            ));
        }
        return Ok((index + 1, count));
    }
    if let Some(index) = var(K8S) {
        let index: usize = index
            .trim()
            .parse()
            .map_err(|_| format!("--shard auto: {K8S}={index:?} is not a whole number"))?;
        let n = shards.ok_or_else(|| {
            format!(
                "--shard auto: {K8S} is set but the shard count is not: add --shards N (the \
                 Indexed Job's completions)"
            )
        })?;
        if n == 0 || index >= n {
            return Err(format!(
                "--shard auto: {K8S}={index} is not below --shards {n}: set --shards to the \
                 Indexed Job's completions"
            ));
        }
        return Ok((index + 1, n));
    }
    Err(format!(
        "--shard auto: no scheduler task found: set {SLURM} (a Slurm job array), or {K8S} with \
         --shards N (a Kubernetes Indexed Job), or give --shard K/N"
    ))
}

/// `template` with `{shard}` replaced by K and `{shards}` by N (an output folder per task under
/// one root: `--out sweep/shard-{shard}-of-{shards}`).
pub fn fill_shard(template: &str, (k, n): (usize, usize)) -> String {
    template
        .replace("{shard}", &k.to_string())
        .replace("{shards}", &n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn slurm(id: &str, min: &str, count: &str, step: Option<&str>) -> Vec<(&'static str, String)> {
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

    fn from(
        vars: &[(&'static str, String)],
        shards: Option<usize>,
    ) -> Result<(usize, usize), String> {
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        shard_from_env(shards, &env(&pairs))
    }

    #[test]
    fn slurm_arrays_from_zero_one_and_stepped_give_shards_one_to_n() {
        // --array=0-3
        let got: Vec<_> = (0..4)
            .map(|id| from(&slurm(&id.to_string(), "0", "4", Some("1")), None).unwrap())
            .collect();
        assert_eq!(got, [(1, 4), (2, 4), (3, 4), (4, 4)]);
        // --array=1-4 (1-based), no step variable
        let got: Vec<_> = (1..=4)
            .map(|id| from(&slurm(&id.to_string(), "1", "4", None), None).unwrap())
            .collect();
        assert_eq!(got, [(1, 4), (2, 4), (3, 4), (4, 4)]);
        // --array=10-22:4 → 10, 14, 18, 22
        let got: Vec<_> = [10, 14, 18, 22]
            .iter()
            .map(|id| from(&slurm(&id.to_string(), "10", "4", Some("4")), Some(4)).unwrap())
            .collect();
        assert_eq!(got, [(1, 4), (2, 4), (3, 4), (4, 4)]);
    }

    #[test]
    fn malformed_or_out_of_range_slurm_values_name_the_variables() {
        let cases = [
            (slurm("x", "0", "4", None), "SLURM_ARRAY_TASK_ID=\"x\""),
            (slurm("1", "", "4", None), "SLURM_ARRAY_TASK_MIN=\"\""),
            (slurm("1", "0", "-4", None), "SLURM_ARRAY_TASK_COUNT=\"-4\""),
            (slurm("4", "0", "4", None), "SLURM_ARRAY_TASK_ID=4"),
            (slurm("0", "1", "4", None), "SLURM_ARRAY_TASK_ID=0"),
            (slurm("5", "0", "4", Some("4")), "SLURM_ARRAY_TASK_STEP=4"),
            (slurm("1", "0", "4", Some("0")), "SLURM_ARRAY_TASK_STEP=0"),
            (slurm("1", "0", "0", None), "SLURM_ARRAY_TASK_COUNT=0"),
        ];
        for (vars, want) in cases {
            let e = from(&vars, None).unwrap_err();
            assert!(e.contains(want), "{vars:?}: {e}");
            assert!(e.starts_with("--shard auto: "), "{e}");
        }
        let e = from(&[("SLURM_ARRAY_TASK_ID", "2".into())], None).unwrap_err();
        assert!(e.contains("SLURM_ARRAY_TASK_MIN is not"), "{e}");
        let e = from(&slurm("2", "0", "4", None), Some(8)).unwrap_err();
        assert!(
            e.contains("--shards 8") && e.contains("SLURM_ARRAY_TASK_COUNT=4"),
            "{e}"
        );
        assert_eq!(from(&slurm("2", "0", "4", None), Some(4)), Ok((3, 4)));
    }

    #[test]
    fn kubernetes_index_needs_the_count() {
        let idx = |i: &str| vec![("JOB_COMPLETION_INDEX", i.to_string())];
        assert_eq!(from(&idx("0"), Some(3)), Ok((1, 3)));
        assert_eq!(from(&idx("2"), Some(3)), Ok((3, 3)));
        let e = from(&idx("3"), Some(3)).unwrap_err();
        assert!(
            e.contains("JOB_COMPLETION_INDEX=3") && e.contains("--shards 3"),
            "{e}"
        );
        let e = from(&idx("1"), None).unwrap_err();
        assert!(e.contains("--shards N"), "{e}");
        let e = from(&idx("one"), Some(3)).unwrap_err();
        assert!(e.contains("JOB_COMPLETION_INDEX=\"one\""), "{e}");
        let e = from(&idx("0"), Some(0)).unwrap_err();
        assert!(e.contains("--shards 0"), "{e}");
    }

    #[test]
    fn no_scheduler_names_both_variable_sets() {
        let e = from(&[], Some(4)).unwrap_err();
        assert!(
            e.contains("SLURM_ARRAY_TASK_ID") && e.contains("JOB_COMPLETION_INDEX"),
            "{e}"
        );
    }

    #[test]
    fn folder_templates_take_the_shard() {
        assert_eq!(
            fill_shard("runs/s-{shard}-of-{shards}", (3, 8)),
            "runs/s-3-of-8"
        );
        assert_eq!(fill_shard("runs/plain", (3, 8)), "runs/plain");
    }
}
