//! The token-set operations of [`Store`] that are not a refresh: save, read, forget, list.
//! Each validates its input, then runs one transaction body of
//! [`ops`](crate::tokens::ops) on the engine.

#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;
use crate::flow::tx::Wipe;
use crate::store::Store;
use crate::tokens::ops::{self, Key};
use crate::tokens::{wake, Saved, TokenResponse, TokenSet, TokenSetInfo};
use crate::validate;

/// A validated key.
pub(super) fn key<'a>(server_id: &'a str, client_id: &'a str) -> Result<Key<'a>> {
    validate::id("server_id", server_id)?;
    validate::id("client_id", client_id)?;
    Ok(Key {
        server_id,
        client_id,
    })
}

impl Store {
    /// Saves the tokens of a login (or any other token response) as the set of `server_id`
    /// and `client_id`, in one transaction: a new set is generation 1, a save over a stored
    /// set is the next generation, and a running refresh of the old set then saves nothing
    /// ([`Finished::Superseded`](crate::Finished::Superseded)). Saving the tokens already
    /// stored changes nothing ([`Saved::Unchanged`]); a refresh token the stored set replaced
    /// is never stored again ([`Saved::Stale`]). The old tokens are wiped from the row.
    ///
    /// ```
    /// use std::time::Duration;
    /// use oauth_state_store::{AccessToken, RefreshToken, Saved, TokenResponse};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = oauth_state_store::Store::open(dir.path().join("flows.db"))?;
    /// let login = TokenResponse::new(AccessToken::new("at-1")?, "Bearer")
    ///     .refresh_token(RefreshToken::new("rt-1")?)
    ///     .expires_in(Duration::from_secs(3600));
    /// let saved = store.save_tokens("https://mcp.example.com", "my-client", login)?;
    /// assert!(matches!(saved, Saved::Stored(g) if g.get() == 1));
    /// let set = store.tokens("https://mcp.example.com", "my-client")?.expect("saved");
    /// assert_eq!(set.access_token().secret(), "at-1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field (`server_id`, `client_id`, `token_type`,
    /// `expires_in`, `scope`, `issuer`, `extra`), with nothing written; storage errors.
    pub fn save_tokens(
        &self,
        server_id: &str,
        client_id: &str,
        tokens: TokenResponse,
    ) -> Result<Saved> {
        let key = key(server_id, client_id)?;
        tokens.validate()?;
        let saved = self
            .engine()
            .write(Wipe::Secret, |tx| ops::save(tx.tokens(), key, &tokens))?;
        if matches!(saved, Saved::Stored(_)) {
            wake::changed(self.store_id(), server_id, client_id);
        }
        Ok(saved)
    }

    /// The live token set of `server_id` and `client_id`: `None` when none is stored or the
    /// stored one was revoked (the user must sign in). Reading never changes anything.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`server_id`, `client_id`), storage errors.
    pub fn tokens(&self, server_id: &str, client_id: &str) -> Result<Option<TokenSet>> {
        let key = key(server_id, client_id)?;
        ops::load(self.engine().token_row(key)?, key)
    }

    /// Deletes the token sets of `server_id` (of `client_id` only, when given), tokens
    /// included (a sign-out); returns how many. A refresh running meanwhile saves nothing
    /// ([`Error::NoTokens`]). On SQLite the old page images leave the `-wal` at once, as
    /// after every bulk wipe.
    ///
    /// ```
    /// # use oauth_state_store::{AccessToken, TokenResponse};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = oauth_state_store::Store::open(dir.path().join("flows.db"))?;
    /// # store.save_tokens("srv", "cli", TokenResponse::new(AccessToken::new("at")?, "Bearer"))?;
    /// assert_eq!(store.forget_tokens("srv", Some("cli"))?, 1);
    /// assert!(store.tokens("srv", "cli")?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`server_id`, `client_id`), storage errors.
    pub fn forget_tokens(&self, server_id: &str, client_id: Option<&str>) -> Result<u64> {
        validate::server_and_client(server_id, client_id)?;
        // A bulk wipe: the engine scrubs once afterwards, in either scrub mode.
        let n = self.engine().write(Wipe::Nothing, |tx| {
            ops::forget(tx.tokens(), server_id, client_id)
        })?;
        if n > 0 {
            self.engine().after_bulk_wipe()?;
            match client_id {
                Some(client_id) => wake::changed(self.store_id(), server_id, client_id),
                None => wake::changed_all(),
            }
        }
        Ok(n)
    }

    /// Every stored token set (of `server_id`, when given), in key order, described without
    /// any token: generation, times, live or revoked, who holds its lease.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`server_id`), storage errors.
    pub fn list_token_sets(&self, server_id: Option<&str>) -> Result<Vec<TokenSetInfo>> {
        if let Some(server_id) = server_id {
            validate::id("server_id", server_id)?;
        }
        self.engine().read(|tx| ops::list(tx.tokens(), server_id))
    }
}
