//! LLM providers: which APIs the daemon may call, and their keys — which stay here. A key is
//! read once, held in a [`Secret`] that never prints, and scrubbed from any error text.

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use reagent::chat::ProviderInfo;
use reagent::config::{ChatConfig, Config, Prices, ProviderConfig, ProviderKind};

pub use crate::secret::Secret;

/// One provider, ready to call.
#[derive(Debug, Clone)]
pub struct Provider {
    /// The config's name for it (the `PROVIDER` in `PROVIDER/MODEL`).
    pub name: String,
    /// Its protocol.
    pub kind: ProviderKind,
    /// Where requests go.
    pub base_url: String,
    /// Its key, or why there is none.
    pub key: Result<Secret, String>,
    /// Models the config lists.
    pub models: Vec<String>,
    /// Prices per million tokens.
    pub prices: Option<Prices>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The config's cap on this provider's answers, in tokens.
    pub max_tokens: Option<u32>,
    /// The config's caps for single models, by id.
    pub model_max_tokens: BTreeMap<String, u32>,
}

/// The built-in provider whose models are the ready model servers (`local/NAME`).
pub const LOCAL: &str = "local";

/// Every provider the daemon knows.
#[derive(Debug, Clone, Default)]
pub struct Providers(Vec<Provider>);

impl Providers {
    /// From the config; with no `[providers.*]`, the public APIs whose key variables are set.
    pub fn from_config(config: &Config) -> Self {
        if !config.providers.is_empty() {
            return Self(
                config
                    .providers
                    .iter()
                    .map(|(name, p)| Provider::from_config(name, p))
                    .collect(),
            );
        }
        let public = [
            (
                "openai",
                ProviderKind::Openai,
                "https://api.openai.com/v1",
                "OPENAI_API_KEY",
            ),
            (
                "anthropic",
                ProviderKind::Anthropic,
                "https://api.anthropic.com",
                "ANTHROPIC_API_KEY",
            ),
        ];
        let found = public
            .into_iter()
            .filter(|(.., var)| std::env::var_os(var).is_some());
        Self(
            found
                .map(|(name, kind, base_url, var)| {
                    let config = ProviderConfig {
                        kind,
                        base_url: base_url.into(),
                        api_key_env: Some(var.into()),
                        api_key_file: None,
                        models: Vec::new(),
                        prices: None,
                        headers: Default::default(),
                        max_tokens: None,
                        model_max_tokens: BTreeMap::new(),
                    };
                    Provider::from_config(name, &config)
                })
                .collect(),
        )
    }

    /// Whether the config defines a provider of this name.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|p| p.name == name)
    }

    /// Every provider.
    pub fn all(&self) -> &[Provider] {
        &self.0
    }

    /// What clients may know about each provider.
    pub fn infos(&self) -> Vec<ProviderInfo> {
        self.0
            .iter()
            .map(|p| ProviderInfo {
                name: p.name.clone(),
                kind: match p.kind {
                    ProviderKind::Openai => "openai".into(),
                    ProviderKind::Anthropic => "anthropic".into(),
                },
                base_url: p.base_url.clone(),
                models: p.models.clone(),
                has_key: p.key.is_ok(),
                answers: None,
            })
            .collect()
    }

    /// Splits `PROVIDER/MODEL` at the first `/` (model ids contain slashes) and finds the
    /// provider. A model the config does not list is passed to the provider as is, but an
    /// empty one is refused: no provider answers `"model": ""` usefully.
    pub fn resolve<'a>(&'a self, model: &'a str) -> Result<(&'a Provider, &'a str), String> {
        let (name, id) = model.split_once('/').ok_or_else(|| {
            format!(
                "model `{model}` names no provider: write PROVIDER/MODEL, e.g. openai/gpt-4o-mini"
            )
        })?;
        if id.trim().is_empty() {
            return Err(format!(
                "model `{model}` names no model after the provider: write PROVIDER/MODEL, \
                 e.g. {name}/{}",
                self.0
                    .iter()
                    .find(|p| p.name == name)
                    .and_then(|p| p.models.first())
                    .map_or("MODEL", String::as_str)
            ));
        }
        let provider = self.0.iter().find(|p| p.name == name).ok_or_else(|| {
            let known: Vec<_> = self.0.iter().map(|p| p.name.as_str()).collect();
            format!(
                "no provider `{name}` (configured: {})",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )
        })?;
        Ok((provider, id))
    }

    /// A model to use when a session names none: the config's default, else the first
    /// provider's first model.
    pub fn default_model(&self, config: &Config) -> Option<String> {
        config.chat.default_model.clone().or_else(|| {
            let provider = self.0.first()?;
            let model = provider.models.first()?;
            Some(format!("{}/{model}", provider.name))
        })
    }
}

impl Provider {
    /// A ready model server on `port`, as the built-in `local` provider: OpenAI chat
    /// completions on loopback, with no key.
    pub fn local(port: u16) -> Self {
        Self {
            name: LOCAL.into(),
            kind: ProviderKind::Openai,
            base_url: format!("http://127.0.0.1:{port}/v1"),
            key: Ok(Secret::new(String::new())),
            models: Vec::new(),
            prices: None,
            headers: Vec::new(),
            max_tokens: None,
            model_max_tokens: BTreeMap::new(),
        }
    }

    /// Asks the provider for its model list, with the key and headers a chat sends: `ok`, or
    /// why it did not answer.
    pub async fn check(&self, http: &reqwest::Client) -> String {
        let key = match &self.key {
            Ok(key) => key,
            Err(why) => return why.clone(),
        };
        let url = match self.kind {
            ProviderKind::Openai => format!("{}/models", self.base_url),
            ProviderKind::Anthropic => {
                format!("{}/v1/models", self.base_url.trim_end_matches("/v1"))
            }
        };
        let request = http.get(&url).timeout(std::time::Duration::from_secs(5));
        match self.authorize(request, key).send().await {
            Ok(response) if response.status().is_success() => "ok".into(),
            Ok(response) => format!("answered {}", response.status()),
            Err(err) => key.scrub(&format!("cannot reach {url}: {err}")),
        }
    }

    /// The protocol it speaks, as the parsers and header rules know it.
    pub fn protocol(&self) -> crate::llm::ProviderKind {
        match self.kind {
            ProviderKind::Openai => crate::llm::ProviderKind::OpenAi,
            ProviderKind::Anthropic => crate::llm::ProviderKind::Anthropic,
        }
    }

    /// The cap on an answer of `model`, when the user set one: the provider's entry for the
    /// model, else the provider's, else `[chat] max_tokens`. `None` sends no cap (Anthropic's
    /// request then carries a per-model default, which its API requires).
    pub fn max_tokens(&self, model: &str, chat: &ChatConfig) -> Option<u32> {
        self.model_max_tokens
            .get(model)
            .copied()
            .or(self.max_tokens)
            .or(chat.max_tokens.map(NonZeroU32::get))
    }

    /// A request with the provider's key (as its protocol wants it) and the config's extra
    /// headers. Every request to a provider goes through here, so `providers --check` sends
    /// exactly the headers a chat would, and proves them.
    pub fn authorize(
        &self,
        mut request: reqwest::RequestBuilder,
        key: &Secret,
    ) -> reqwest::RequestBuilder {
        if !key.expose().is_empty() {
            for (name, value) in self.protocol().auth_headers(key.expose()) {
                request = request.header(name, value);
            }
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        request
    }

    fn from_config(name: &str, config: &ProviderConfig) -> Self {
        Self {
            name: name.to_string(),
            kind: config.kind,
            base_url: config.base_url.trim_end_matches('/').to_string(),
            key: load_key(name, config),
            models: config.models.clone(),
            prices: config.prices,
            headers: config.headers.clone().into_iter().collect(),
            max_tokens: config.max_tokens.map(NonZeroU32::get),
            model_max_tokens: config
                .model_max_tokens
                .iter()
                .map(|(model, cap)| (model.clone(), cap.get()))
                .collect(),
        }
    }
}

fn load_key(name: &str, config: &ProviderConfig) -> Result<Secret, String> {
    // Local servers (vLLM, llama.cpp, Ollama) often need no key at all: then it is empty.
    Secret::load(
        &format!("provider `{name}`"),
        config.api_key_env.as_deref(),
        config.api_key_file.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_split_at_the_first_slash() {
        let mut config = Config::default();
        let provider = ProviderConfig {
            kind: ProviderKind::Openai,
            base_url: "http://x/v1/".into(),
            api_key_env: None,
            api_key_file: None,
            models: vec!["m".into()],
            prices: None,
            headers: Default::default(),
            max_tokens: None,
            model_max_tokens: BTreeMap::new(),
        };
        config.providers.insert("router".into(), provider);
        let providers = Providers::from_config(&config);
        let (found, model) = providers.resolve("router/meta-llama/Llama-3-8B").unwrap();
        assert_eq!(
            (found.name.as_str(), model),
            ("router", "meta-llama/Llama-3-8B")
        );
        assert_eq!(found.base_url, "http://x/v1");
        assert!(providers.resolve("nope/x").unwrap_err().contains("router"));
        assert!(providers.resolve("noslash").is_err());
        for empty in ["router/", "router/  "] {
            let err = providers.resolve(empty).unwrap_err();
            assert!(
                err.contains("names no model") && err.contains("router/m"),
                "{err}"
            );
        }
        assert_eq!(
            providers.default_model(&config).as_deref(),
            Some("router/m")
        );
    }

    #[test]
    fn a_cap_is_sent_only_where_the_user_set_one_the_narrowest_winning() {
        let text = "[chat]\nmax_tokens = 500\n\n[providers.a]\nkind = \"openai\"\n\
                    base_url = \"http://h/v1\"\nmax_tokens = 1000\n\
                    model_max_tokens = { \"big\" = 9000 }\n\n\
                    [providers.b]\nkind = \"openai\"\nbase_url = \"http://h/v1\"\n";
        let config = Config::parse(std::path::Path::new("c.toml"), text).unwrap();
        let providers = Providers::from_config(&config);
        let cap = |model: &str, chat: &ChatConfig| {
            let (provider, id) = providers.resolve(model).unwrap();
            provider.max_tokens(id, chat)
        };
        assert_eq!(cap("a/big", &config.chat), Some(9000));
        assert_eq!(cap("a/small", &config.chat), Some(1000));
        assert_eq!(cap("b/any", &config.chat), Some(500));
        assert_eq!(
            cap("b/any", &ChatConfig::default()),
            None,
            "no cap by default"
        );
    }
}
