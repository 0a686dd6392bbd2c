//! The tokens service: who may use the HTTP face, and for what. A token is `rg_` and 64 hex
//! digits of randomness, shown once at creation; the store and memory keep only its SHA-256
//! hash, and a presented token is checked against every hash in constant time.

use reagent::protocol::{CreateToken, RpcError, TokenCreated, codes};
use reagent::time::now_ms;
use reagent::token::{Scope, TokenInfo};
use sha2::{Digest as _, Sha256};

use crate::daemon::{Daemon, internal};
use crate::store::StoredToken;

/// Every token, as the store keeps them.
pub type Tokens = Vec<StoredToken>;

/// Why a request is refused: said to the caller as 401 (or 403), never more precisely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No token, or one the daemon does not know.
    Unknown,
    /// A real token without the scope this route needs.
    OutOfScope,
}

/// Creates a token and returns it: the only time the token itself is told.
pub fn create(daemon: &Daemon, params: CreateToken) -> Result<TokenCreated, RpcError> {
    reagent::names::check("name", &params.name)?;
    let mut scopes = if params.scopes.is_empty() {
        Scope::ALL.to_vec()
    } else {
        params.scopes
    };
    scopes.sort();
    scopes.dedup();
    let token = format!(
        "rg_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let stored = StoredToken {
        info: TokenInfo {
            name: params.name.clone(),
            scopes: scopes.clone(),
            created_at: now_ms(),
        },
        hash: hash(&token),
    };
    let mut state = daemon.state();
    if state.tokens.iter().any(|t| t.info.name == params.name) {
        return Err(RpcError::new(
            codes::INVALID_PARAMS,
            format!(
                "`name`: a token called `{}` exists; revoke it first",
                params.name
            ),
        ));
    }
    state.store().insert_token(&stored).map_err(internal)?;
    state.tokens.push(stored);
    Ok(TokenCreated {
        name: params.name,
        token,
        scopes,
    })
}

/// Every token's name and scopes.
pub fn list(daemon: &Daemon) -> Vec<TokenInfo> {
    (daemon.state().tokens.iter())
        .map(|t| t.info.clone())
        .collect()
}

/// Revokes a token: requests carrying it are refused from now on.
pub fn revoke(daemon: &Daemon, name: &str) -> Result<(), RpcError> {
    let mut state = daemon.state();
    if !state.store().delete_token(name).map_err(internal)? {
        return Err(RpcError::new(
            codes::NOT_FOUND,
            format!("no token called `{name}`"),
        ));
    }
    state.tokens.retain(|t| t.info.name != name);
    Ok(())
}

/// The name of the token `presented` is, when it is one and carries `scope`. Every stored
/// hash is compared, each in constant time, so the time taken says nothing about how close
/// a guess came.
pub fn check(daemon: &Daemon, presented: Option<&str>, scope: Scope) -> Result<String, Denied> {
    let presented = hash(presented.unwrap_or_default());
    let state = daemon.state();
    let mut found: Option<&StoredToken> = None;
    for token in &state.tokens {
        if constant_time_eq(&token.hash, &presented) {
            found = Some(token);
        }
    }
    match found {
        Some(token) if token.info.scopes.contains(&scope) => Ok(token.info.name.clone()),
        Some(_) => Err(Denied::OutOfScope),
        None => Err(Denied::Unknown),
    }
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_compare_equal_only_when_equal() {
        let a = hash("rg_one");
        assert!(constant_time_eq(&a, &hash("rg_one")));
        assert!(!constant_time_eq(&a, &hash("rg_two")));
        assert!(!constant_time_eq(&a, &hash("")));
    }
}
