//! What an engine hands to an operation's body: one transaction with both row interfaces, the
//! flows' ([`FlowTx`]) and the token sets' ([`TokenTx`]).
//!
//! A flow operation takes the transaction as a `&mut dyn FlowTx` (a `&mut dyn Tx` becomes one
//! where it is passed), a token-set operation reaches its statements through [`Tx::tokens`]:
//! neither layer knows the other's row interface.

use crate::flow::tx::FlowTx;
use crate::tokens::tx::TokenTx;

/// One transaction of an engine, as an operation's body gets it.
pub(crate) trait Tx: FlowTx {
    /// The same transaction's token-set statements.
    fn tokens(&mut self) -> &mut dyn TokenTx;
}
