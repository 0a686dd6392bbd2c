//! The exact argv and environment of a recipe's server.
//!
//! One function per backend turns a recipe into the command line that backend documents,
//! so `reagent recipe show` prints precisely what a launch runs and the tests can check it
//! flag by flag. Every server listens on 127.0.0.1 only: reagent is the way in, and a model
//! server on a shared machine answers nobody else. Flags follow each project's own reference:
//! vLLM's `vllm serve` arguments, SGLang's server arguments, llama.cpp's `llama-server`
//! README.

use reagent::model::{Backend, Recipe};

/// Where every server listens: reagent reaches it locally, nobody else does.
pub const HOST: &str = "127.0.0.1";

/// What stands for the port when none is known yet (`recipe show` of a recipe without a
/// `port`: a free one is picked at each launch). `command` recipes write it themselves.
pub const PORT_PLACEHOLDER: &str = "{port}";

/// llama.cpp's "offload every layer": more layers than any model has, accepted by every
/// llama-server version (newer ones also take `all`, older ones do not).
const ALL_LAYERS: &str = "999";

/// The argv that serves `recipe` on `port`; `None` puts [`PORT_PLACEHOLDER`] where the port
/// goes. Optional flags appear only when the recipe sets what they carry, so the server's
/// own defaults apply otherwise; the recipe's `extra_args` come last, as written, so they can
/// add any flag reagent does not know.
pub fn argv(recipe: &Recipe, port: Option<u16>) -> Vec<String> {
    let port = port.map_or_else(|| PORT_PLACEHOLDER.to_string(), |port| port.to_string());
    let mut argv = match recipe.backend {
        Backend::Vllm => vllm(recipe, &port),
        Backend::Sglang => sglang(recipe, &port),
        Backend::Llamacpp => llamacpp(recipe, &port),
        Backend::Command => command(recipe, &port),
    };
    argv.extend(recipe.extra_args.iter().cloned());
    argv
}

/// The environment the server gets on top of the run's usual one: the recipe's `env` in key
/// order, and `CUDA_VISIBLE_DEVICES` set to the GPUs the daemon placed it on.
///
/// The daemon owns placement, so a `CUDA_VISIBLE_DEVICES` in the recipe never reaches the
/// server: with `gpus` it is replaced by the placed GPUs (`Some(&[])`, a CPU recipe, hides
/// every GPU with an empty value), and with `None` (nothing placed yet, as `recipe show`)
/// it is left out, since it would not be what a launch sets.
pub fn env(recipe: &Recipe, gpus: Option<&[u32]>) -> Vec<(String, String)> {
    const DEVICES: &str = "CUDA_VISIBLE_DEVICES";
    let mut env = recipe.env.clone();
    env.remove(DEVICES);
    if let Some(gpus) = gpus {
        let ids: Vec<String> = gpus.iter().map(u32::to_string).collect();
        env.insert(DEVICES.to_string(), ids.join(","));
    }
    env.into_iter().collect()
}

/// The tensor-parallel degree to pass: the recipe's, else the GPU count when it spans more
/// than one GPU (a server on one GPU needs no flag).
fn tensor_parallel(recipe: &Recipe) -> Option<String> {
    let gpus = recipe.gpus.count();
    recipe
        .tensor_parallel
        .map(|n| n.to_string())
        .or_else(|| (gpus > 1).then(|| gpus.to_string()))
}

/// Pushes `flag value` when there is a value.
fn push_some(argv: &mut Vec<String>, flag: &str, value: Option<String>) {
    if let Some(value) = value {
        argv.push(flag.to_string());
        argv.push(value);
    }
}

/// `vllm serve MODEL …`. A tool parser also turns on `--enable-auto-tool-choice`: vLLM
/// refuses `tool_choice: auto` without both.
fn vllm(recipe: &Recipe, port: &str) -> Vec<String> {
    let mut argv = strings(&[
        "vllm",
        "serve",
        &recipe.model,
        "--host",
        HOST,
        "--port",
        port,
        "--served-model-name",
        recipe.served_name(),
    ]);
    push_some(&mut argv, "--tensor-parallel-size", tensor_parallel(recipe));
    push_some(
        &mut argv,
        "--gpu-memory-utilization",
        recipe.gpu_memory_fraction.map(|f| f.to_string()),
    );
    push_some(
        &mut argv,
        "--max-model-len",
        recipe.max_context.map(|n| n.to_string()),
    );
    if let Some(parser) = &recipe.tool_parser {
        argv.push("--enable-auto-tool-choice".to_string());
        argv.extend(strings(&["--tool-call-parser", parser]));
    }
    push_some(
        &mut argv,
        "--reasoning-parser",
        recipe.reasoning_parser.clone(),
    );
    argv
}

/// `python3 -m sglang.launch_server --model-path MODEL …`, with `--enable-metrics`: SGLang
/// serves `/metrics` only when asked, and reagent scrapes it.
fn sglang(recipe: &Recipe, port: &str) -> Vec<String> {
    let mut argv = strings(&[
        "python3",
        "-m",
        "sglang.launch_server",
        "--model-path",
        &recipe.model,
        "--host",
        HOST,
        "--port",
        port,
        "--served-model-name",
        recipe.served_name(),
        "--enable-metrics",
    ]);
    push_some(&mut argv, "--tp-size", tensor_parallel(recipe));
    push_some(
        &mut argv,
        "--mem-fraction-static",
        recipe.gpu_memory_fraction.map(|f| f.to_string()),
    );
    push_some(
        &mut argv,
        "--context-length",
        recipe.max_context.map(|n| n.to_string()),
    );
    push_some(&mut argv, "--tool-call-parser", recipe.tool_parser.clone());
    push_some(
        &mut argv,
        "--reasoning-parser",
        recipe.reasoning_parser.clone(),
    );
    argv
}

/// `llama-server --model FILE …` or `llama-server --hf-repo USER/MODEL[:QUANT] …` (see
/// [`is_local_file`]), with `--metrics`: llama.cpp serves `/metrics` only when asked.
///
/// llama.cpp has no flag for two recipe fields, which are left out: `gpu_memory_fraction`
/// (it takes what the layers and context need) and `tensor_parallel` (it splits a model
/// across the visible GPUs by layer, `--split-mode layer`, whatever the degree). Its tool
/// calling has no named parser either: any `tool_parser` turns on `--jinja`, the chat
/// templates that carry tool calls, and the parser's name is not passed.
fn llamacpp(recipe: &Recipe, port: &str) -> Vec<String> {
    let source = if is_local_file(recipe) {
        "--model"
    } else {
        "--hf-repo"
    };
    let mut argv = strings(&[
        "llama-server",
        source,
        &recipe.model,
        "--host",
        HOST,
        "--port",
        port,
        "--alias",
        recipe.served_name(),
        "--metrics",
    ]);
    push_some(
        &mut argv,
        "--ctx-size",
        recipe.max_context.map(|n| n.to_string()),
    );
    if recipe.tool_parser.is_some() {
        argv.push("--jinja".to_string());
    }
    push_some(
        &mut argv,
        "--reasoning-format",
        recipe.reasoning_parser.clone(),
    );
    let gpus = recipe.gpus.count();
    if gpus > 0 {
        argv.extend(strings(&["--n-gpu-layers", ALL_LAYERS]));
    }
    if gpus > 1 {
        argv.extend(strings(&["--split-mode", "layer"]));
    }
    argv
}

/// Whether a llama.cpp recipe's `model` is a file (`--model`) rather than a Hugging Face
/// repository (`--hf-repo`). A file is what ends in `.gguf`; starts with `/`, `./`, `../`
/// or `~`; has no `/` at all (a hub repository is always `user/model`); or exists, taken
/// from the recipe's `cwd`. Anything else (`user/model`, `user/model:Q4_K_M`) is a
/// repository.
pub fn is_local_file(recipe: &Recipe) -> bool {
    let model = recipe.model.as_str();
    let path_like = ["/", "./", "../", "~"]
        .iter()
        .any(|prefix| model.starts_with(prefix));
    if path_like || !model.contains('/') || model.to_ascii_lowercase().ends_with(".gguf") {
        return true;
    }
    match &recipe.cwd {
        Some(cwd) => cwd.join(model).exists(),
        None => std::path::Path::new(model).exists(),
    }
}

/// The recipe's own `command`, with `{port}`, `{model}` and `{served_name}` filled in
/// wherever they appear, inside longer arguments too (`--listen=127.0.0.1:{port}`). With no
/// port known, `{port}` stays, as the placeholder it already is. Listening on 127.0.0.1 is
/// the command's job here: reagent cannot know its flags.
fn command(recipe: &Recipe, port: &str) -> Vec<String> {
    recipe
        .command
        .iter()
        .map(|arg| {
            arg.replace(PORT_PLACEHOLDER, port)
                .replace("{model}", &recipe.model)
                .replace("{served_name}", recipe.served_name())
        })
        .collect()
}

/// Owned copies of `parts`, for building argvs from literals and borrowed fields.
fn strings(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|part| (*part).to_string()).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use reagent::model::GpuSelect;

    use super::*;

    /// The smallest recipe of `backend`; tests set the fields they are about.
    fn recipe(backend: Backend, model: &str) -> Recipe {
        Recipe {
            name: "m".to_string(),
            backend,
            model: model.to_string(),
            served_name: None,
            gpus: GpuSelect::default(),
            tensor_parallel: None,
            gpu_memory_fraction: None,
            max_context: None,
            tool_parser: None,
            reasoning_parser: None,
            port: None,
            env: BTreeMap::new(),
            extra_args: Vec::new(),
            command: Vec::new(),
            cwd: None,
            health_path: None,
            ready_timeout_secs: None,
            idle_unload_secs: None,
            needs_mib: None,
        }
    }

    /// A recipe of `backend` with every field the argv uses set.
    fn full(backend: Backend, model: &str) -> Recipe {
        Recipe {
            name: "qwen".to_string(),
            served_name: Some("qwen3".to_string()),
            gpus: GpuSelect::Ids(vec![2, 3]),
            tensor_parallel: Some(2),
            gpu_memory_fraction: Some(0.85),
            max_context: Some(32768),
            tool_parser: Some("hermes".to_string()),
            reasoning_parser: Some("qwen3".to_string()),
            extra_args: vec!["--seed".to_string(), "7".to_string()],
            ..recipe(backend, model)
        }
    }

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    /// Whether `flag` is in `argv`, followed by `value` when one is given.
    fn has(argv: &[String], flag: &str, value: Option<&str>) -> bool {
        argv.iter().enumerate().any(|(i, arg)| {
            arg == flag && value.is_none_or(|v| argv.get(i + 1).map(String::as_str) == Some(v))
        })
    }

    #[test]
    fn vllm_full_argv() {
        let argv = argv(&full(Backend::Vllm, "Qwen/Qwen3-8B"), Some(8001));
        assert_eq!(
            argv,
            words(
                "vllm serve Qwen/Qwen3-8B --host 127.0.0.1 --port 8001 \
                 --served-model-name qwen3 --tensor-parallel-size 2 \
                 --gpu-memory-utilization 0.85 --max-model-len 32768 \
                 --enable-auto-tool-choice --tool-call-parser hermes \
                 --reasoning-parser qwen3 --seed 7"
            )
        );
    }

    #[test]
    fn vllm_minimal_argv_has_no_optional_flags() {
        let argv = argv(&recipe(Backend::Vllm, "Qwen/Qwen3-8B"), Some(8001));
        assert_eq!(
            argv,
            words("vllm serve Qwen/Qwen3-8B --host 127.0.0.1 --port 8001 --served-model-name m")
        );
    }

    #[test]
    fn vllm_each_optional_flag_appears_only_when_set() {
        let base = recipe(Backend::Vllm, "m");
        let cases: Vec<(Recipe, &str, Option<&str>)> = vec![
            (
                Recipe {
                    tensor_parallel: Some(4),
                    ..base.clone()
                },
                "--tensor-parallel-size",
                Some("4"),
            ),
            (
                Recipe {
                    gpu_memory_fraction: Some(0.5),
                    ..base.clone()
                },
                "--gpu-memory-utilization",
                Some("0.5"),
            ),
            (
                Recipe {
                    max_context: Some(8192),
                    ..base.clone()
                },
                "--max-model-len",
                Some("8192"),
            ),
            (
                Recipe {
                    tool_parser: Some("llama3_json".to_string()),
                    ..base.clone()
                },
                "--tool-call-parser",
                Some("llama3_json"),
            ),
            (
                Recipe {
                    tool_parser: Some("llama3_json".to_string()),
                    ..base.clone()
                },
                "--enable-auto-tool-choice",
                None,
            ),
            (
                Recipe {
                    reasoning_parser: Some("deepseek_r1".to_string()),
                    ..base.clone()
                },
                "--reasoning-parser",
                Some("deepseek_r1"),
            ),
        ];
        let plain = argv(&base, Some(1));
        for (recipe, flag, value) in cases {
            assert!(!has(&plain, flag, None), "{flag} without its field");
            assert!(
                has(&argv(&recipe, Some(1)), flag, value),
                "{flag} {value:?}"
            );
        }
    }

    #[test]
    fn tensor_parallel_defaults_to_the_gpu_count_above_one() {
        let one = recipe(Backend::Vllm, "m");
        assert!(!has(&argv(&one, Some(1)), "--tensor-parallel-size", None));
        let four = Recipe {
            gpus: GpuSelect::Count(4),
            ..one.clone()
        };
        assert!(has(
            &argv(&four, Some(1)),
            "--tensor-parallel-size",
            Some("4")
        ));
        let ids = Recipe {
            gpus: GpuSelect::Ids(vec![0, 1]),
            ..one.clone()
        };
        assert!(has(
            &argv(&ids, Some(1)),
            "--tensor-parallel-size",
            Some("2")
        ));
        let told = Recipe {
            gpus: GpuSelect::Count(4),
            tensor_parallel: Some(1),
            ..one.clone()
        };
        let told = argv(&told, Some(1));
        assert!(
            has(&told, "--tensor-parallel-size", Some("1")),
            "the recipe's wins"
        );
        let sgl = Recipe {
            backend: Backend::Sglang,
            gpus: GpuSelect::Count(2),
            ..one
        };
        assert!(has(&argv(&sgl, Some(1)), "--tp-size", Some("2")));
    }

    #[test]
    fn sglang_full_argv() {
        let argv = argv(
            &full(Backend::Sglang, "meta-llama/Llama-3.1-8B-Instruct"),
            Some(30000),
        );
        assert_eq!(
            argv,
            words(
                "python3 -m sglang.launch_server \
                 --model-path meta-llama/Llama-3.1-8B-Instruct \
                 --host 127.0.0.1 --port 30000 --served-model-name qwen3 --enable-metrics \
                 --tp-size 2 --mem-fraction-static 0.85 --context-length 32768 \
                 --tool-call-parser hermes --reasoning-parser qwen3 --seed 7"
            )
        );
    }

    #[test]
    fn sglang_minimal_argv_has_no_optional_flags() {
        let argv = argv(&recipe(Backend::Sglang, "org/model"), Some(30000));
        assert_eq!(
            argv,
            words(
                "python3 -m sglang.launch_server --model-path org/model --host 127.0.0.1 \
                 --port 30000 --served-model-name m --enable-metrics"
            )
        );
    }

    #[test]
    fn sglang_each_optional_flag_appears_only_when_set() {
        let base = recipe(Backend::Sglang, "m");
        let cases: Vec<(Recipe, &str, &str)> = vec![
            (
                Recipe {
                    tensor_parallel: Some(8),
                    ..base.clone()
                },
                "--tp-size",
                "8",
            ),
            (
                Recipe {
                    gpu_memory_fraction: Some(0.7),
                    ..base.clone()
                },
                "--mem-fraction-static",
                "0.7",
            ),
            (
                Recipe {
                    max_context: Some(4096),
                    ..base.clone()
                },
                "--context-length",
                "4096",
            ),
            (
                Recipe {
                    tool_parser: Some("llama3".to_string()),
                    ..base.clone()
                },
                "--tool-call-parser",
                "llama3",
            ),
            (
                Recipe {
                    reasoning_parser: Some("deepseek-r1".to_string()),
                    ..base.clone()
                },
                "--reasoning-parser",
                "deepseek-r1",
            ),
        ];
        let plain = argv(&base, Some(1));
        for (recipe, flag, value) in cases {
            assert!(!has(&plain, flag, None), "{flag} without its field");
            assert!(has(&argv(&recipe, Some(1)), flag, Some(value)), "{flag}");
        }
        let tools = Recipe {
            tool_parser: Some("llama3".to_string()),
            ..base
        };
        assert!(
            !has(&argv(&tools, Some(1)), "--enable-auto-tool-choice", None),
            "a vLLM flag SGLang does not have"
        );
    }

    #[test]
    fn llamacpp_full_argv() {
        let argv = argv(
            &full(Backend::Llamacpp, "/models/qwen3-8b.gguf"),
            Some(8080),
        );
        assert_eq!(
            argv,
            words(
                "llama-server --model /models/qwen3-8b.gguf --host 127.0.0.1 --port 8080 \
                 --alias qwen3 --metrics --ctx-size 32768 --jinja --reasoning-format qwen3 \
                 --n-gpu-layers 999 --split-mode layer --seed 7"
            )
        );
        assert!(!has(&argv, "--gpu-memory-utilization", None));
        assert!(!has(&argv, "--tensor-parallel-size", None));
        assert!(!has(&argv, "--tool-call-parser", None));
    }

    #[test]
    fn llamacpp_minimal_argv_offloads_to_its_one_gpu() {
        let argv = argv(
            &recipe(Backend::Llamacpp, "ggml-org/gemma-3-1b-it-GGUF"),
            Some(8080),
        );
        assert_eq!(
            argv,
            words(
                "llama-server --hf-repo ggml-org/gemma-3-1b-it-GGUF --host 127.0.0.1 \
                 --port 8080 --alias m --metrics --n-gpu-layers 999"
            )
        );
    }

    #[test]
    fn llamacpp_gpu_flags_follow_the_gpu_count() {
        let cpu = Recipe {
            gpus: GpuSelect::Count(0),
            ..recipe(Backend::Llamacpp, "a.gguf")
        };
        let argv_cpu = argv(&cpu, Some(1));
        assert!(!has(&argv_cpu, "--n-gpu-layers", None));
        assert!(!has(&argv_cpu, "--split-mode", None));
        let one = Recipe {
            gpus: GpuSelect::Ids(vec![3]),
            ..cpu.clone()
        };
        let argv_one = argv(&one, Some(1));
        assert!(has(&argv_one, "--n-gpu-layers", Some("999")));
        assert!(!has(&argv_one, "--split-mode", None));
        let two = Recipe {
            gpus: GpuSelect::Count(2),
            ..cpu
        };
        let argv_two = argv(&two, Some(1));
        assert!(has(&argv_two, "--n-gpu-layers", Some("999")));
        assert!(has(&argv_two, "--split-mode", Some("layer")));
    }

    #[test]
    fn llamacpp_each_optional_flag_appears_only_when_set() {
        let base = recipe(Backend::Llamacpp, "a.gguf");
        let plain = argv(&base, Some(1));
        for flag in ["--ctx-size", "--jinja", "--reasoning-format"] {
            assert!(!has(&plain, flag, None), "{flag} without its field");
        }
        let ctx = Recipe {
            max_context: Some(2048),
            ..base.clone()
        };
        assert!(has(&argv(&ctx, Some(1)), "--ctx-size", Some("2048")));
        let tools = Recipe {
            tool_parser: Some("anything".to_string()),
            ..base.clone()
        };
        let tools = argv(&tools, Some(1));
        assert!(has(&tools, "--jinja", None));
        assert!(!tools.contains(&"anything".to_string()), "no parser name");
        let reasoning = Recipe {
            reasoning_parser: Some("deepseek".to_string()),
            ..base.clone()
        };
        assert!(has(
            &argv(&reasoning, Some(1)),
            "--reasoning-format",
            Some("deepseek")
        ));
        let ignored = Recipe {
            gpu_memory_fraction: Some(0.5),
            tensor_parallel: Some(2),
            ..base
        };
        assert_eq!(
            argv(&ignored, Some(1)),
            plain,
            "no llama.cpp flag for these"
        );
    }

    #[test]
    fn llamacpp_tells_files_from_hub_repositories() {
        let source = |model: &str| {
            let argv = argv(&recipe(Backend::Llamacpp, model), Some(1));
            (argv[1].clone(), argv[2].clone())
        };
        for file in [
            "/models/a.gguf",
            "/models/no-extension",
            "./a.bin",
            "../models/a",
            "~/models/a",
            "models/sub/a.gguf",
            "models/A.GGUF",
            "model.bin",
        ] {
            assert_eq!(source(file), ("--model".to_string(), file.to_string()));
        }
        for repo in [
            "ggml-org/gemma-3-1b-it-GGUF",
            "unsloth/Qwen3-8B-GGUF:Q4_K_M",
        ] {
            assert_eq!(source(repo), ("--hf-repo".to_string(), repo.to_string()));
        }
    }

    #[test]
    fn llamacpp_a_file_that_exists_under_cwd_is_a_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("weights/tiny")).unwrap();
        std::fs::write(dir.path().join("weights/tiny/model"), b"GGUF").unwrap();
        let here = Recipe {
            cwd: Some(dir.path().to_path_buf()),
            ..recipe(Backend::Llamacpp, "weights/tiny/model")
        };
        assert!(is_local_file(&here));
        assert_eq!(argv(&here, Some(1))[1], "--model");
        let elsewhere = Recipe {
            cwd: Some(dir.path().join("weights")),
            ..here
        };
        assert!(!is_local_file(&elsewhere), "not there: a repository");
    }

    #[test]
    fn port_placeholder_when_no_port_is_known() {
        for backend in [Backend::Vllm, Backend::Sglang, Backend::Llamacpp] {
            let argv = argv(&recipe(backend, "org/m"), None);
            assert!(has(&argv, "--port", Some("{port}")), "{backend}: {argv:?}");
            assert!(
                has(&argv, "--host", Some("127.0.0.1")),
                "{backend}: {argv:?}"
            );
        }
    }

    #[test]
    fn command_substitutes_port_model_and_served_name_everywhere() {
        let custom = Recipe {
            name: "mine".to_string(),
            served_name: Some("my-model".to_string()),
            command: words(
                "python3 -m some_server --listen=127.0.0.1:{port} --model {model} \
                 --name {served_name} --log=/tmp/{served_name}-{port}.log",
            ),
            extra_args: words("--verbose {port}"),
            ..recipe(Backend::Command, "./weights")
        };
        assert_eq!(
            argv(&custom, Some(9000)),
            words(
                "python3 -m some_server --listen=127.0.0.1:9000 --model ./weights \
                 --name my-model --log=/tmp/my-model-9000.log --verbose {port}"
            ),
            "extra_args stay as written"
        );
        assert_eq!(
            argv(&custom, None),
            words(
                "python3 -m some_server --listen=127.0.0.1:{port} --model ./weights \
                 --name my-model --log=/tmp/my-model-{port}.log --verbose {port}"
            )
        );
    }

    #[test]
    fn command_served_name_defaults_to_the_recipe_name() {
        let custom = Recipe {
            command: words("serve --name {served_name}"),
            ..recipe(Backend::Command, "")
        };
        assert_eq!(argv(&custom, Some(1)), words("serve --name m"));
    }

    #[test]
    fn extra_args_come_last_for_every_backend() {
        for backend in [
            Backend::Vllm,
            Backend::Sglang,
            Backend::Llamacpp,
            Backend::Command,
        ] {
            let with = Recipe {
                extra_args: words("--last one"),
                command: words("serve {port}"),
                ..recipe(backend, "org/m")
            };
            let argv = argv(&with, Some(1));
            assert_eq!(argv[argv.len() - 2..], words("--last one"), "{backend}");
        }
    }

    #[test]
    fn env_is_sorted_with_the_placed_gpus() {
        let mut with_env = recipe(Backend::Vllm, "m");
        with_env.env = BTreeMap::from([
            ("VLLM_LOGGING_LEVEL".to_string(), "DEBUG".to_string()),
            ("HF_HOME".to_string(), "/data/hf".to_string()),
        ]);
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            env(&with_env, Some(&[1, 3])),
            pairs(&[
                ("CUDA_VISIBLE_DEVICES", "1,3"),
                ("HF_HOME", "/data/hf"),
                ("VLLM_LOGGING_LEVEL", "DEBUG"),
            ])
        );
        assert_eq!(
            env(&with_env, None),
            pairs(&[("HF_HOME", "/data/hf"), ("VLLM_LOGGING_LEVEL", "DEBUG")])
        );
        assert_eq!(
            env(&recipe(Backend::Vllm, "m"), Some(&[0])),
            pairs(&[("CUDA_VISIBLE_DEVICES", "0")])
        );
        assert!(env(&recipe(Backend::Vllm, "m"), None).is_empty());
    }

    #[test]
    fn env_hides_every_gpu_from_a_cpu_recipe() {
        assert_eq!(
            env(&recipe(Backend::Llamacpp, "a.gguf"), Some(&[])),
            [("CUDA_VISIBLE_DEVICES".to_string(), String::new())]
        );
    }

    #[test]
    fn env_the_daemon_owns_placement() {
        let mut pinned = recipe(Backend::Vllm, "m");
        pinned
            .env
            .insert("CUDA_VISIBLE_DEVICES".to_string(), "7".to_string());
        assert_eq!(
            env(&pinned, Some(&[2])),
            [("CUDA_VISIBLE_DEVICES".to_string(), "2".to_string())]
        );
        assert!(
            env(&pinned, None).is_empty(),
            "not shown: a launch would not set it"
        );
    }
}
