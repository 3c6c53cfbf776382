//! Every command and flag, in the order `--help` shows them.

use std::path::PathBuf;

use clap::builder::PossibleValuesParser;
use clap::{Args, Parser, Subcommand};
use minigpt_model::{DEVICE_NAMES, DType};

/// minigpt: study how decoding strategies shape what a GPT writes.
#[derive(Debug, Parser)]
#[command(
    name = "minigpt",
    version,
    about = "minigpt: study how decoding strategies shape what a GPT-style model writes",
    after_help = "Without --model, every command runs on the shipped character-level minigpt-shakespeare
(built into the binary), on the CPU.

Examples:
  minigpt generate --prompt \"ROMEO:\" --max-new-tokens 200 --seed 1
  minigpt generate --model gpt2 --prompt \"Machine learning is\" --max-new-tokens 50 --temperature 0.8
  minigpt score --text \"To be, or not to be\" --json
  minigpt train --config configs/train-shakespeare.toml
  minigpt bench --model path/to/gpt2 --batch 1,8"
)]
pub struct Cli {
    /// Refuse to run unless every model runs on --device wgpu and its adapter is a GPU, not a
    /// CPU software rasteriser such as lavapipe (which --device wgpu otherwise only warns about).
    #[arg(long = "require-gpu", alias = "require_gpu", global = true)]
    pub require_gpu: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Continue a prompt, streaming the new text to stdout.
    #[command(after_help = "Examples:
  minigpt generate --prompt \"ROMEO:\" --max-new-tokens 200 --seed 1
  minigpt generate --model gpt2 --prompt \"Machine learning is\" --max-new-tokens 50 --temperature 0.8
  minigpt generate --model path/to/gpt2 --prompt \"Once upon a time\" --greedy --json
  minigpt generate --model path/to/gpt2 --prompt \"The\" --top-k 40 --top-p 0.9 --seed 7
  minigpt generate --model path/to/gpt2 --prompt \"The\" --strategy configs/decode/min_p_0.05.toml --temperature 0.7 --show-chain
  minigpt generate --prompt \"ROMEO:\" --strategy typical_0.95 --seed 3
  minigpt generate --model gpt2 --temperature 0.8          # on a terminal: type prompts, /help for commands
  printf 'ROMEO:\\nJULIET:\\n' | minigpt generate --seed 1   # one JSON line per prompt

Without --strategy, the flags build this chain (each step only when its flag is given):
  logits -> repetition_penalty -> temperature -> top_k -> top_p -> min_p -> multinomial (or greedy)")]
    Generate(GenerateArgs),
    /// Per-token log-probabilities, perplexity and bits per byte of a text.
    #[command(after_help = "Examples:
  minigpt score --text \"To be, or not to be, that is the question\"
  minigpt score --model path/to/gpt2 --text \"The quick brown fox\"
  minigpt score --model path/to/gpt2 --file essay.txt --json")]
    Score(ScoreArgs),
    /// List every decoding plugin (processors, selectors, searches) with its parameters, and
    /// the strategies: built-in ones and the files of a directory (configs/decode).
    #[command(after_help = "Examples:
  minigpt strategies
  minigpt strategies --configs my/strategies")]
    Strategies(StrategiesArgs),
    /// Train a GPT from scratch on a text file (character-level), resumably.
    #[command(after_help = "Examples:
  minigpt train --config configs/train-shakespeare.toml
  minigpt train --config configs/train-shakespeare.toml --resume
  minigpt train --config configs/train-shakespeare.toml --stop-after 500   # then --resume later")]
    Train(TrainArgs),
    /// Run an experiment: prompts × strategies × temperatures × samples, with metrics per
    /// generated text (generations.csv), pooled per cell (summary.csv) and plotted.
    #[command(after_help = "Examples:
  minigpt run --config configs/sweep.toml
  minigpt run --config configs/sweep.toml --out /tmp/sweep --shard 1/4   # one quarter of the grid
  minigpt merge --out /tmp/sweep-all /tmp/sweep-1 /tmp/sweep-2 /tmp/sweep-3 /tmp/sweep-4
  minigpt run --config sweep.toml --shard auto --out /shared/sweep/shard-{shard}-of-{shards}
      # in a Slurm array task (or a Kubernetes Indexed Job pod, with --shards N)

Running the same config again on its folder resumes it (finished rows are skipped); Ctrl-C
keeps every finished row, writes the summary and exits 130. A folder that holds every row of
its grid or shard gets complete.json, which `minigpt merge` requires.")]
    Run(RunArgs),
    /// Compare a candidate model with a GPT-2 baseline: the same prompts and strategies
    /// through both, every continuation judged by the baseline, bits per byte of both on a
    /// held-out text, side by side in comparison.csv.
    #[command(after_help = "Example:
  minigpt eval --config configs/eval-gpt2.toml    # GPT-2 (`gpt2`) is downloaded on first use")]
    Eval(EvalArgs),
    /// Join the folders of a sharded run (`run --shard K/N`) into one, with its summary. Every
    /// shard must be there and complete (its complete.json), unless --allow-partial.
    #[command(after_help = "Examples:
  minigpt merge --out experiments/runs/all experiments/runs/part-1 experiments/runs/part-2
  minigpt merge --out /shared/sweep/merged /shared/sweep/shard-*
  minigpt merge --allow-partial --out /tmp/so-far /shared/sweep/shard-*   # says what is missing")]
    Merge(MergeArgs),
    /// Write report.html into a run or eval folder: one self-contained page (no network) with
    /// the header, the sortable summary, every plot behind a metric selector, and the texts
    /// side by side with each token shaded by its probability.
    #[command(after_help = "Examples:
  minigpt report experiments/runs/shakespeare-decoding
  minigpt report experiments/runs/eval-gpt2        # an eval folder: both models side by side

run, merge and eval write the report themselves when they finish (and when Ctrl-C stops a run);
this command rewrites it, for example for a folder written by an older minigpt.")]
    Report(ReportArgs),
    /// Serve the model over HTTP: OpenAI's completions API (streaming included) and a playground
    /// page, with every request's rows decoded together in one continuously refilled batch.
    #[command(after_help = "Examples:
  minigpt serve                                  # the shipped model on http://127.0.0.1:8080
  minigpt serve --model path/to/gpt2 --port 9000 --max-batch 32
  curl -s localhost:8080/v1/completions -H 'Content-Type: application/json' \\
       -d '{\"prompt\": \"ROMEO:\", \"max_tokens\": 40, \"temperature\": 0.8, \"seed\": 1}'

Open http://127.0.0.1:8080/ for the playground: up to four strategies streaming side by side,
tokens shaded by probability, a token's alternatives and entropy on click.

Any OpenAI client works: base_url http://127.0.0.1:8080/v1 and any api_key. minigpt's own field
\"strategy\" takes a built-in strategy's name (GET /v1/strategies), a strategy file's TOML text,
or a chain as JSON, e.g.
{\"processors\": [{\"name\": \"min_p\", \"p\": 0.05}], \"selector\": {\"name\": \"multinomial\"}}.")]
    Serve(ServeArgs),
    /// Prefill and decode speed (tokens/s) at batch 1 and 8; with --strategy, sampling too.
    #[command(after_help = "Example:
  minigpt bench --prompt-len 64 --new-tokens 64   # the built-in model (128 positions)
  minigpt bench --model /tmp/gpt2-random --prompt-len 128 --new-tokens 64 --batch 1,8
  # what a sweep does: generate through a decoding chain (statistics included), rows batched
  minigpt bench --model /tmp/gpt2-random --prompt-len 32 --new-tokens 128 --batch 16,64 \\
      --strategy top_p_0.9 --temperature 1.0")]
    Bench(BenchArgs),
    /// Download a model from the Hugging Face Hub into the Hugging Face cache (only the files
    /// minigpt needs) and print its local folder.
    #[command(after_help = "Examples:
  minigpt download gpt2
  minigpt download openai-community/gpt2-medium@main
  HF_HUB_OFFLINE=1 minigpt download gpt2   # only checks the cache

Files go to $HF_HUB_CACHE (default $HF_HOME/hub, $HF_HOME defaulting to ~/.cache/huggingface),
shared with Python's huggingface_hub. HF_ENDPOINT names another server, HF_TOKEN a token for
private or gated repositories. An interrupted download resumes on the next run.")]
    Download(DownloadArgs),
}

/// Where the model is and what runs it.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// A model directory in Hugging Face layout (config.json, model.safetensors, tokenizer
    /// files), or a Hugging Face repo id (gpt2, openai-community/gpt2-medium, name@revision)
    /// downloaded into the Hugging Face cache on first use
    /// [default: the shipped character-level minigpt-shakespeare, built into the binary]
    #[arg(long, value_name = "DIR|REPO")]
    pub model: Option<String>,
    /// Compute device: cpu = minigpt's own CPU kernels; flex, ndarray, wgpu = Burn backends.
    #[arg(long, default_value = "cpu", value_parser = PossibleValuesParser::new(DEVICE_NAMES))]
    pub device: String,
    /// Weight storage type (f16 and bf16 on --device cpu): halves the bytes each token reads.
    #[arg(long, default_value = "f32", value_parser = PossibleValuesParser::new(DType::NAMES))]
    pub dtype: String,
}

/// `minigpt generate`.
#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub model: ModelArgs,
    /// The text to continue. Without it, prompts are read line by line: at an interactive
    /// prompt on a terminal, or one per line from a pipe with one JSON line out per prompt.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Read prompts interactively (the default with no --prompt on a terminal); /help lists
    /// the commands that change the chain between prompts.
    #[arg(long, short = 'i')]
    pub interactive: bool,
    /// Most tokens to generate.
    #[arg(
        long = "max-new-tokens",
        visible_alias = "max_new_tokens",
        default_value_t = 50
    )]
    pub max_new_tokens: usize,
    /// Sampling temperature (> 0); logits are divided by it.
    #[arg(long, allow_negative_numbers = true)]
    pub temperature: Option<f32>,
    /// Always take the most likely token (ignores temperature, top-k, top-p, seed).
    #[arg(long)]
    pub greedy: bool,
    /// Keep only the k most likely tokens (k >= 1).
    #[arg(long = "top-k", visible_alias = "top_k")]
    pub top_k: Option<usize>,
    /// Keep the smallest set of tokens whose probability reaches p (0 < p <= 1).
    #[arg(long = "top-p", visible_alias = "top_p", allow_negative_numbers = true)]
    pub top_p: Option<f32>,
    /// Keep tokens with p >= m * p_max (0 <= m <= 1).
    #[arg(long = "min-p", visible_alias = "min_p")]
    pub min_p: Option<f32>,
    /// CTRL repetition penalty over the whole sequence (> 0; 1 = off).
    #[arg(long = "repetition-penalty", visible_alias = "repetition_penalty")]
    pub repetition_penalty: Option<f32>,
    /// A strategy file (TOML chain of processors and a selector), or the name of a built-in
    /// strategy (`minigpt strategies` lists them); --temperature may be combined with it, the
    /// other sampling flags may not.
    #[arg(long, value_name = "FILE|NAME")]
    pub strategy: Option<PathBuf>,
    /// Print the decoding chain on stderr before generating.
    #[arg(long = "show-chain")]
    pub show_chain: bool,
    /// Random seed (default: drawn from the clock and reported).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop as soon as the continuation contains this text (repeatable); the token that
    /// completes it is kept.
    #[arg(long, value_name = "TEXT")]
    pub stop: Vec<String>,
    /// Keep going after the end-of-text token.
    #[arg(long = "ignore-eos", visible_alias = "ignore_eos")]
    pub ignore_eos: bool,
    /// Refuse prompts longer than the context and stop at its end, instead of sliding a window.
    #[arg(long = "no-crop")]
    pub no_crop: bool,
    /// Print one JSON object (prompt, text, tokens, finish_reason, seed, seconds) instead of
    /// streaming.
    #[arg(long)]
    pub json: bool,
}

/// `minigpt score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub model: ModelArgs,
    /// The text to score.
    #[arg(long, conflicts_with = "file", required_unless_present = "file")]
    pub text: Option<String>,
    /// A UTF-8 file to score.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Context before the text: conditions it but is not scored (as a prompt before a
    /// continuation; its tokens and the text's are encoded separately and joined).
    #[arg(long)]
    pub prompt: Option<String>,
    /// For texts longer than the context: how far each window advances (default: half the
    /// context; 1 gives every token a full context).
    #[arg(long)]
    pub stride: Option<usize>,
    /// Print JSON (tokens, logprobs, perplexity, bits_per_byte).
    #[arg(long)]
    pub json: bool,
}

/// `minigpt train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training config (TOML: [data], [model], [train], [output]).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Continue from the output folder's checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Start over in an output folder that already holds a run (its checkpoint and model are
    /// replaced).
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// Stop after this many steps of this invocation, saving a checkpoint (continue with --resume).
    #[arg(long = "stop-after", value_name = "STEPS")]
    pub stop_after: Option<usize>,
}

/// `minigpt run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Experiment config (TOML: [experiment], [model], [judge], [prompts], [sweep]).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Output folder [default: experiments/runs/<experiment.name>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Run only slice K of N of the grid (1 <= K <= N); join the parts with `minigpt merge`.
    /// `auto` takes K and N from a Slurm array task (SLURM_ARRAY_TASK_ID, _MIN, _COUNT, _STEP)
    /// or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, with --shards N). `--out` may hold
    /// `{shard}` and `{shards}` [default when sharded:
    /// experiments/runs/<experiment.name>/shard-K-of-N].
    #[arg(long, value_name = "K/N|auto")]
    pub shard: Option<String>,
    /// The shard count for `--shard auto` in a Kubernetes Indexed Job (its `completions`);
    /// under Slurm, a check of the array's size.
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// Add to a folder that holds a run of a different config (its rows are kept).
    #[arg(long)]
    pub force: bool,
}

/// `minigpt eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Evaluation config (TOML: [experiment], [candidate], [baseline], [prompts], [sweep],
    /// [heldout]).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Output folder [default: experiments/runs/<experiment.name>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Add to folders that hold runs of a different config.
    #[arg(long)]
    pub force: bool,
}

/// `minigpt merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The merged folder (must not exist yet).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Shard folders of one config.
    #[arg(required = true, value_name = "DIR")]
    pub parts: Vec<PathBuf>,
    /// Merge what the folders hold even when shards are missing or unfinished (listed).
    #[arg(long)]
    pub allow_partial: bool,
}

/// `minigpt report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A folder written by `minigpt run`, `merge` or `eval`.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// `minigpt serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub model: ModelArgs,
    /// Address to listen on (127.0.0.1: this machine only).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0: any free port, printed on the first line).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Most rows decoded together; further rows wait for a place.
    #[arg(long = "max-batch", alias = "max_batch", default_value_t = 64)]
    pub max_batch: usize,
    /// Requests allowed to wait beyond a full batch; more get 503.
    #[arg(long = "max-queue", alias = "max_queue", default_value_t = 256)]
    pub max_queue: usize,
    /// Largest max_tokens a request may ask for.
    #[arg(long = "max-tokens", alias = "max_tokens", default_value_t = 4096)]
    pub max_tokens: usize,
    /// Longest prompt, in tokens.
    #[arg(
        long = "max-prompt-tokens",
        alias = "max_prompt_tokens",
        default_value_t = 8192
    )]
    pub max_prompt_tokens: usize,
    /// Largest request body, in bytes (413 beyond).
    #[arg(long = "max-body-bytes", alias = "max_body_bytes", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Threads for HTTP (parsing requests, writing streamed tokens). The model runs on its
    /// own threads; one HTTP thread leaves the cores to them (raise it for hundreds of
    /// clients on many cores).
    #[arg(long = "http-threads", alias = "http_threads", default_value_t = 1)]
    pub http_threads: usize,
}

/// `minigpt strategies`.
#[derive(Debug, Args)]
pub struct StrategiesArgs {
    /// Directory of strategy files to list beside the built-in strategies.
    #[arg(long, value_name = "DIR", default_value = "configs/decode")]
    pub configs: PathBuf,
    /// The model the strategies are checked against (its tokenizer and vocabulary).
    #[command(flatten)]
    pub model: ModelArgs,
}

/// `minigpt download`.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// A Hugging Face repo id, optionally at a revision (`gpt2`, `openai-community/gpt2@main`).
    #[arg(value_name = "REPO")]
    pub repo: String,
}

/// `minigpt bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub model: ModelArgs,
    /// Prompt length for the prefill measurement and before decoding.
    #[arg(long = "prompt-len", default_value_t = 128)]
    pub prompt_len: usize,
    /// Decode steps to time.
    #[arg(long = "new-tokens", default_value_t = 64)]
    pub new_tokens: usize,
    /// Batch sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    pub batch: Vec<usize>,
    /// Timed repetitions per batch size (the best is reported).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Also time generation through this decoding strategy (a built-in name such as
    /// `top_p_0.9`, or a strategy file): prefill, every step and every row's chain, as a sweep
    /// runs them (`sample tok/s`: new tokens over the whole generation's time).
    #[arg(long, value_name = "NAME|FILE")]
    pub strategy: Option<PathBuf>,
    /// The sampling temperature for --strategy (its own when left out).
    #[arg(long, requires = "strategy")]
    pub temperature: Option<f64>,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}
