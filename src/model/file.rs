//! Reading recipes from TOML files: `reagent recipe add FILE.toml` reads one or many
//! `[[recipe]]` tables here, on the client, before anything reaches the daemon.
//!
//! A mistake in a recipe file must be found where it is written, not when a launch fails
//! minutes later: every error names the file, the line and the key, the way config errors
//! do. Paths are settled here too, because only the reader knows where the file is: a
//! recipe without `cwd` starts in the file's folder, so a `command` recipe can name its
//! scripts and weights relative to the file.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_path_to_error::Segment;

use super::Recipe;

/// A whole recipe file: `[[recipe]]` tables and nothing else, so a typo in a top-level key
/// (or a `[recipes]` header) is an error rather than a file that silently adds nothing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipeFile {
    #[serde(default)]
    recipe: Vec<toml::Spanned<Recipe>>,
}

/// Reads the recipes of the file at `path` (see [`parse`]); an unreadable file is an error
/// naming it, so `recipe add` can report it as is.
pub fn read(path: &Path) -> Result<Vec<Recipe>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    parse(path, &text)
}

/// Parses recipe-file text; `path` names the file in errors and anchors relative paths.
///
/// Each recipe is checked ([`Recipe::check`]), two recipes of one name are refused (the
/// second would silently replace the first in the store), and a recipe without `cwd` gets
/// the file's folder, made absolute: the daemon starts the server there, whatever its own
/// working directory. A relative `cwd` is taken from the file's folder for the same reason,
/// and a leading `~/` in `model` or `cwd` is expanded here, since servers are started
/// without a shell and would take `~` literally.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Recipe>, String> {
    let at = |span: Option<Range<usize>>| location(path, text, span);
    let de = toml::Deserializer::parse(text)
        .map_err(|err| format!("{}: {}", at(err.span()), err.message().trim_end()))?;
    let file: RecipeFile = serde_path_to_error::deserialize(de).map_err(|err| {
        let segments: Vec<Segment> = err.path().iter().cloned().collect();
        let inner = err.into_inner();
        let message = describe(&segments, inner.message().trim_end(), text);
        format!("{}: {message}", at(inner.span()))
    })?;
    if file.recipe.is_empty() {
        return Err(format!("no [[recipe]] tables in {}", path.display()));
    }
    let folder = folder_of(path);
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut recipes = Vec::with_capacity(file.recipe.len());
    for (index, spanned) in file.recipe.into_iter().enumerate() {
        let line = line_of(text, spanned.span().start);
        let mut recipe = spanned.into_inner();
        recipe.check().map_err(|why| {
            let why = if why.starts_with("recipe `") {
                why
            } else {
                format!("recipe #{}: {why}", index + 1)
            };
            format!("{}:{line}: {why}", path.display())
        })?;
        if let Some(first) = first_line.insert(recipe.name.clone(), line) {
            return Err(format!(
                "{}:{line}: recipe `{}` is already defined at line {first}; names must be unique",
                path.display(),
                recipe.name
            ));
        }
        if let Some(model) = expand_home(&recipe.model) {
            recipe.model = model.to_string_lossy().into_owned();
        }
        recipe.cwd = Some(match recipe.cwd.take() {
            None => folder.clone(),
            Some(cwd) => {
                let cwd = cwd.to_str().and_then(expand_home).unwrap_or(cwd);
                folder.join(cwd)
            }
        });
        recipes.push(recipe);
    }
    Ok(recipes)
}

/// `FILE:LINE`, or just `FILE` when the error has no place in the text.
fn location(path: &Path, text: &str, span: Option<Range<usize>>) -> String {
    match span {
        Some(span) => format!("{}:{}", path.display(), line_of(text, span.start)),
        None => path.display().to_string(),
    }
}

/// The 1-based line holding byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Turns serde's wording (fields, sequences, untagged enums) into the file's terms: keys,
/// `[[recipe]]` tables, `gpus = 2`, naming the recipe the key is in.
fn describe(segments: &[Segment], message: &str, text: &str) -> String {
    let in_recipe = match segments {
        [Segment::Map { key }, Segment::Seq { index }, ..] if key == "recipe" => Some(*index),
        _ => None,
    };
    let Some(index) = in_recipe else {
        if let Some((key, _)) = unknown_field(message) {
            return format!(
                "unknown top-level key `{key}`: a recipe file holds only [[recipe]] tables"
            );
        }
        if matches!(segments, [Segment::Map { key }] if key == "recipe") {
            return format!(
                "key `recipe`: {message}; write each recipe as a [[recipe]] table (double brackets)"
            );
        }
        return message.to_string();
    };
    let recipe = recipe_label(text, index);
    let key = segments[2..]
        .iter()
        .filter_map(|segment| match segment {
            // `toml::Spanned` wraps each recipe in a private field of its own.
            Segment::Map { key } if key.starts_with("$__serde_spanned") => None,
            Segment::Map { key } => Some(key.clone()),
            Segment::Seq { index } => Some(format!("[{index}]")),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .fold(String::new(), |mut path, part| {
            if !path.is_empty() && !part.starts_with('[') {
                path.push('.');
            }
            path.push_str(&part);
            path
        });
    if let Some((unknown, allowed)) = unknown_field(message) {
        return match allowed {
            Some(allowed) => {
                format!("unknown key `{unknown}` in recipe {recipe} (allowed keys: {allowed})")
            }
            None => format!("unknown key `{unknown}` in recipe {recipe}"),
        };
    }
    if let Some(missing) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return format!("recipe {recipe} has no `{missing}`, which every recipe needs");
    }
    if key == "gpus" && message.contains("untagged") {
        return format!(
            "key `gpus` in recipe {recipe}: expected a GPU count (`gpus = 2`) or a list of \
             GPU ids (`gpus = [0, 1]`)"
        );
    }
    if key.is_empty() {
        format!("recipe {recipe}: {message}")
    } else {
        format!("key `{key}` in recipe {recipe}: {message}")
    }
}

/// The key and, when serde lists them, the allowed keys of an "unknown field" message.
fn unknown_field(message: &str) -> Option<(&str, Option<&str>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let allowed = rest
        .strip_prefix(", expected one of ")
        .or_else(|| rest.strip_prefix(", expected "))
        .map(str::trim);
    Some((key, allowed))
}

/// How an error names the `index`th recipe: `` `its-name` `` when it has a readable name,
/// else `#N` (1-based, in file order).
fn recipe_label(text: &str, index: usize) -> String {
    let name = text.parse::<toml::Table>().ok().and_then(|table| {
        table
            .get("recipe")?
            .as_array()?
            .get(index)?
            .get("name")?
            .as_str()
            .map(str::to_string)
    });
    match name {
        Some(name) => format!("`{name}`"),
        None => format!("#{}", index + 1),
    }
}

/// The absolute folder holding the file at `path`: where its recipes' servers start.
fn folder_of(path: &Path) -> PathBuf {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let absolute = if parent.is_absolute() {
        parent
    } else {
        std::env::current_dir().map_or_else(|_| parent.clone(), |dir| dir.join(&parent))
    };
    std::fs::canonicalize(&absolute).unwrap_or(absolute)
}

/// `~` or `~/rest` with the user's home folder; `None` for anything else (or no `HOME`).
fn expand_home(text: &str) -> Option<PathBuf> {
    let rest = match text.strip_prefix('~')? {
        "" => "",
        rest => rest.strip_prefix('/')?,
    };
    let home = std::env::var_os("HOME").filter(|home| !home.is_empty())?;
    Some(PathBuf::from(home).join(rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Backend, GpuSelect};

    fn parse_ok(text: &str) -> Vec<Recipe> {
        match parse(Path::new("/recipes/r.toml"), text) {
            Ok(recipes) => recipes,
            Err(err) => panic!("{err}"),
        }
    }

    fn parse_err(text: &str) -> String {
        match parse(Path::new("recipes.toml"), text) {
            Ok(recipes) => panic!("parsed: {recipes:?}"),
            Err(err) => err,
        }
    }

    #[test]
    fn one_recipe_per_backend_parses() {
        let text = r#"
[[recipe]]
name = "qwen"
backend = "vllm"
model = "Qwen/Qwen3-8B"
served_name = "qwen3"
gpus = 2
tensor_parallel = 2
gpu_memory_fraction = 0.85
max_context = 32768
tool_parser = "hermes"
reasoning_parser = "qwen3"
port = 8001
env = { VLLM_LOGGING_LEVEL = "INFO" }
extra_args = ["--enable-prefix-caching"]
health_path = "/health"
ready_timeout_secs = 900
idle_unload_secs = 3600
needs_mib = 70000

[[recipe]]
name = "llama-sgl"
backend = "sglang"
model = "meta-llama/Llama-3.1-8B-Instruct"

[[recipe]]
name = "gemma"
backend = "llamacpp"
model = "./models/gemma.gguf"
gpus = 0

[[recipe]]
name = "other"
backend = "command"
model = "some/model"
command = ["python3", "-m", "server", "--port", "{port}"]
"#;
        let recipes = parse_ok(text);
        let backends: Vec<Backend> = recipes.iter().map(|r| r.backend).collect();
        assert_eq!(
            backends,
            [
                Backend::Vllm,
                Backend::Sglang,
                Backend::Llamacpp,
                Backend::Command
            ]
        );
        let qwen = &recipes[0];
        assert_eq!(qwen.served_name(), "qwen3");
        assert_eq!(qwen.gpus, GpuSelect::Count(2));
        assert_eq!(qwen.tensor_parallel, Some(2));
        assert_eq!(qwen.gpu_memory_fraction, Some(0.85));
        assert_eq!(qwen.max_context, Some(32768));
        assert_eq!(qwen.tool_parser.as_deref(), Some("hermes"));
        assert_eq!(qwen.reasoning_parser.as_deref(), Some("qwen3"));
        assert_eq!(qwen.port, Some(8001));
        assert_eq!(qwen.env["VLLM_LOGGING_LEVEL"], "INFO");
        assert_eq!(qwen.extra_args, ["--enable-prefix-caching"]);
        assert_eq!(qwen.ready_timeout_secs(), 900);
        assert_eq!(qwen.idle_unload_secs, Some(3600));
        assert_eq!(qwen.needs_mib, Some(70000));
        let sgl = &recipes[1];
        assert_eq!(sgl.served_name(), "llama-sgl");
        assert_eq!(sgl.gpus, GpuSelect::Count(1), "one GPU by default");
        assert_eq!(
            recipes[2].model, "./models/gemma.gguf",
            "relative models stay"
        );
        assert_eq!(recipes[3].command[4], "{port}");
    }

    #[test]
    fn unknown_key_names_file_line_key_and_recipe() {
        let text = "\
# my recipes
[[recipe]]
name = \"qwen\"
backend = \"vllm\"
model = \"Qwen/Qwen3-8B\"

[[recipe]]
name = \"llama\"
backend = \"llamacpp\"
model = \"x.gguf\"
gpu_mem = 0.5
";
        let err = parse_err(text);
        assert!(err.starts_with("recipes.toml:11: "), "{err}");
        assert!(
            err.contains("unknown key `gpu_mem` in recipe `llama`"),
            "{err}"
        );
        assert!(err.contains("allowed keys:"), "{err}");
        assert!(err.contains("`gpu_memory_fraction`"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }

    #[test]
    fn unknown_key_in_a_recipe_without_a_name_says_which_recipe() {
        let text = "[[recipe]]\nbackend = \"vllm\"\nmodel = \"m\"\nmodle = 1\n";
        let err = parse_err(text);
        assert!(err.starts_with("recipes.toml:4: "), "{err}");
        assert!(err.contains("unknown key `modle` in recipe #1"), "{err}");
    }

    #[test]
    fn wrong_type_names_file_line_and_key() {
        let text = "\
[[recipe]]
name = \"qwen\"
backend = \"vllm\"
model = \"Qwen/Qwen3-8B\"
max_context = \"long\"
";
        let err = parse_err(text);
        assert!(err.starts_with("recipes.toml:5: "), "{err}");
        assert!(err.contains("key `max_context` in recipe `qwen`"), "{err}");
        assert!(err.contains("invalid type"), "{err}");
    }

    #[test]
    fn wrong_type_inside_env_names_the_nested_key() {
        let text = "\
[[recipe]]
name = \"qwen\"
backend = \"vllm\"
model = \"m\"

[recipe.env]
HF_HOME = 3
";
        let err = parse_err(text);
        assert!(err.starts_with("recipes.toml:7: "), "{err}");
        assert!(err.contains("key `env.HF_HOME` in recipe `qwen`"), "{err}");
    }

    #[test]
    fn unknown_backend_lists_the_backends() {
        let text = "[[recipe]]\nname = \"a\"\nbackend = \"tgi\"\nmodel = \"m\"\n";
        let err = parse_err(text);
        assert!(err.starts_with("recipes.toml:3: "), "{err}");
        assert!(err.contains("key `backend` in recipe `a`"), "{err}");
        assert!(err.contains("`llamacpp`"), "{err}");
    }

    #[test]
    fn missing_key_names_it() {
        let err = parse_err("[[recipe]]\nname = \"a\"\nbackend = \"vllm\"\n");
        assert!(err.starts_with("recipes.toml:"), "{err}");
        assert!(err.contains("recipe `a` has no `model`"), "{err}");
    }

    #[test]
    fn top_level_keys_other_than_recipe_are_refused() {
        let err = parse_err(
            "title = \"mine\"\n\n[[recipe]]\nname = \"a\"\nbackend = \"vllm\"\nmodel = \"m\"\n",
        );
        assert!(err.starts_with("recipes.toml:1: "), "{err}");
        assert!(err.contains("unknown top-level key `title`"), "{err}");
        let err = parse_err("[[recipes]]\nname = \"a\"\n");
        assert!(err.contains("unknown top-level key `recipes`"), "{err}");
    }

    #[test]
    fn a_single_bracket_table_says_to_use_double_brackets() {
        let err = parse_err("[recipe]\nname = \"a\"\nbackend = \"vllm\"\nmodel = \"m\"\n");
        assert!(err.starts_with("recipes.toml:"), "{err}");
        assert!(err.contains("[[recipe]]"), "{err}");
    }

    #[test]
    fn bad_toml_syntax_names_the_line() {
        let err = parse_err("[[recipe]]\nname = \"a\"\nbackend = vllm\n");
        assert!(err.starts_with("recipes.toml:3: "), "{err}");
    }

    #[test]
    fn duplicate_names_are_refused_naming_both_lines() {
        let text = "\
[[recipe]]
name = \"a\"
backend = \"vllm\"
model = \"m\"

[[recipe]]
name = \"a\"
backend = \"sglang\"
model = \"m\"
";
        let err = parse_err(text);
        assert!(err.starts_with("recipes.toml:"), "{err}");
        assert!(
            err.contains("recipe `a` is already defined at line"),
            "{err}"
        );
    }

    #[test]
    fn check_errors_name_file_and_recipe() {
        let text = "\
[[recipe]]
name = \"a\"
backend = \"vllm\"
model = \"m\"
gpu_memory_fraction = 1.5
";
        let err = parse_err(text);
        assert!(err.starts_with("recipes.toml:"), "{err}");
        assert!(err.contains("recipe `a`"), "{err}");
        assert!(err.contains("gpu_memory_fraction"), "{err}");
        let err = parse_err("[[recipe]]\nname = \"c\"\nbackend = \"command\"\nmodel = \"m\"\n");
        assert!(err.contains("needs `command"), "{err}");
    }

    #[test]
    fn a_file_without_recipes_is_an_error() {
        for text in ["", "# nothing yet\n", "recipe = []\n"] {
            let err = parse_err(text);
            assert_eq!(err, "no [[recipe]] tables in recipes.toml", "{text:?}");
        }
    }

    #[test]
    fn cwd_is_the_files_folder_unless_the_recipe_says() {
        let dir = tempfile::tempdir().unwrap();
        let canonical = std::fs::canonicalize(dir.path()).unwrap();
        let path = dir.path().join("r.toml");
        let text = "\
[[recipe]]
name = \"a\"
backend = \"vllm\"
model = \"m\"

[[recipe]]
name = \"b\"
backend = \"vllm\"
model = \"m\"
cwd = \"/srv/models\"

[[recipe]]
name = \"c\"
backend = \"vllm\"
model = \"m\"
cwd = \"sub\"
";
        std::fs::write(&path, text).unwrap();
        let recipes = read(&path).unwrap();
        assert_eq!(recipes[0].cwd.as_deref(), Some(canonical.as_path()));
        assert_eq!(recipes[1].cwd.as_deref(), Some(Path::new("/srv/models")));
        assert_eq!(recipes[2].cwd, Some(canonical.join("sub")));
    }

    #[test]
    fn cwd_of_a_relative_file_is_absolute() {
        let recipes = parse(
            Path::new("r.toml"),
            "[[recipe]]\nname = \"a\"\nbackend = \"vllm\"\nmodel = \"m\"\n",
        )
        .unwrap();
        let cwd = recipes[0].cwd.clone().unwrap();
        assert!(cwd.is_absolute(), "{}", cwd.display());
        let here = std::fs::canonicalize(std::env::current_dir().unwrap()).unwrap();
        assert_eq!(cwd, here);
    }

    #[test]
    fn unreadable_file_names_it() {
        let err = read(Path::new("/nonexistent/reagent/r.toml")).unwrap_err();
        assert!(
            err.starts_with("cannot read /nonexistent/reagent/r.toml: "),
            "{err}"
        );
    }

    #[test]
    fn gpus_takes_a_count_a_list_or_zero() {
        let recipe = |gpus: &str| {
            let text =
                format!("[[recipe]]\nname = \"a\"\nbackend = \"vllm\"\nmodel = \"m\"\n{gpus}\n");
            parse(Path::new("recipes.toml"), &text)
        };
        let two = recipe("gpus = 2").unwrap();
        assert_eq!(two[0].gpus, GpuSelect::Count(2));
        assert_eq!(two[0].gpus.count(), 2);
        let ids = recipe("gpus = [0, 1]").unwrap();
        assert_eq!(ids[0].gpus, GpuSelect::Ids(vec![0, 1]));
        assert_eq!(ids[0].gpus.count(), 2);
        let cpu = recipe("gpus = 0").unwrap();
        assert_eq!(cpu[0].gpus, GpuSelect::Count(0));
        assert_eq!(cpu[0].gpus.count(), 0);
        let err = recipe("gpus = \"two\"").unwrap_err();
        assert!(err.starts_with("recipes.toml:5: "), "{err}");
        assert!(err.contains("key `gpus` in recipe `a`"), "{err}");
        assert!(err.contains("`gpus = [0, 1]`"), "{err}");
        let err = recipe("gpus = [0, 0]").unwrap_err();
        assert!(err.contains("names a GPU twice"), "{err}");
    }

    #[test]
    fn home_is_expanded_in_model_and_cwd() {
        let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
            eprintln!("skipped: HOME is not set");
            return;
        };
        let home = PathBuf::from(home);
        let text = "[[recipe]]\nname = \"a\"\nbackend = \"llamacpp\"\n\
                    model = \"~/models/a.gguf\"\ncwd = \"~\"\n";
        let recipes = parse_ok(text);
        assert_eq!(
            recipes[0].model,
            home.join("models/a.gguf").to_string_lossy()
        );
        assert_eq!(recipes[0].cwd.as_deref(), Some(home.as_path()));
        assert_eq!(
            expand_home("~user/x"),
            None,
            "another user's home is left alone"
        );
        assert_eq!(expand_home("models/~"), None);
    }

    #[test]
    fn shipped_example_recipes_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/recipes");
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|ext| ext == "toml") {
                let recipes = read(&path).unwrap_or_else(|err| panic!("{err}"));
                seen.extend(recipes.into_iter().map(|r| r.backend));
            }
        }
        for backend in [
            Backend::Vllm,
            Backend::Sglang,
            Backend::Llamacpp,
            Backend::Command,
        ] {
            assert!(seen.contains(&backend), "no example for {backend}");
        }
    }
}
