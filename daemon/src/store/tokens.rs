//! Tokens of the HTTP face: each one's name, scopes and SHA-256 hash (hex), never the token.

use anyhow::Context as _;
use reagent::token::{Scope, TokenInfo};
use rusqlite::params;

use super::Store;

/// A stored token: what clients may see, and the hash requests are checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// Name, scopes, creation time.
    pub info: TokenInfo,
    /// SHA-256 of the token.
    pub hash: [u8; 32],
}

impl Store {
    /// Every token, oldest first.
    pub fn load_tokens(&self) -> anyhow::Result<Vec<StoredToken>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, hash, scopes, created_at FROM tokens ORDER BY rowid")?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })?;
        let mut tokens = Vec::new();
        for row in rows {
            let (name, hex, scopes, created_at) = row?;
            let scopes: Vec<Scope> =
                serde_json::from_str(&scopes).context("a token's scopes do not parse")?;
            let hash = from_hex(&hex).context("a token's hash does not parse")?;
            tokens.push(StoredToken {
                info: TokenInfo {
                    name,
                    scopes,
                    created_at,
                },
                hash,
            });
        }
        Ok(tokens)
    }

    /// Stores a new token; fails when the name is taken.
    pub fn insert_token(&self, token: &StoredToken) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO tokens (name, hash, scopes, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                token.info.name,
                to_hex(&token.hash),
                serde_json::to_string(&token.info.scopes)?,
                token.info.created_at
            ],
        )?;
        Ok(())
    }

    /// Forgets a token; says whether there was one.
    pub fn delete_token(&self, name: &str) -> anyhow::Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM tokens WHERE name = ?1", [name])?
            > 0)
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}
