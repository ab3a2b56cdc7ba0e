//! The operations over a row interface that misbehaves on purpose.

use super::*;
use crate::flow::row::{Live, PendingFlow};
use crate::flow::tx::{FlowRows, MaintenanceRows, Wipe};
use crate::{BeginRequest, Store};

/// An engine's transaction whose guarded updates find their row changed: every call goes
/// to the real transaction, but the updates report that they changed no row.
struct RowChangedUnderneath<'a>(&'a mut dyn FlowTx);

impl FlowRows for RowChangedUnderneath<'_> {
    fn now(&self) -> i64 {
        self.0.now()
    }
    fn by_state(&mut self, key: &[u8; 32]) -> Result<Option<FlowRow>> {
        self.0.by_state(key)
    }
    fn by_challenge(&mut self, challenge: &str) -> Result<Option<FlowRow>> {
        self.0.by_challenge(challenge)
    }
    fn insert(&mut self, flow: &NewFlow<'_>, created_at: i64, expires_at: i64) -> Result<()> {
        self.0.insert(flow, created_at, expires_at)
    }
    fn bind(&mut self, _id: i64, _binding: &Binding<'_>) -> Result<u64> {
        Ok(0)
    }
    fn set_callback(&mut self, _id: i64, _result: &CallbackResult<'_>) -> Result<u64> {
        Ok(0)
    }
    fn mark_consumed(&mut self, _id: i64, _was: Status, _ended: Option<&str>) -> Result<u64> {
        Ok(0)
    }
    fn delete(&mut self, _id: i64, _was: Status) -> Result<u64> {
        Ok(0)
    }
    fn live_verifiers(
        &mut self,
        server_id: &str,
        client_id: Option<&str>,
        statuses: &[Status],
        live: Live,
        limit: u32,
    ) -> Result<Vec<PendingFlow>> {
        self.0
            .live_verifiers(server_id, client_id, statuses, live, limit)
    }
    fn count_live(
        &mut self,
        server_id: &str,
        client_id: Option<&str>,
        statuses: &[Status],
        live: Live,
    ) -> Result<u64> {
        self.0.count_live(server_id, client_id, statuses, live)
    }
    fn any_live_for_redirect(
        &mut self,
        statuses: &[Status],
        live: Live,
        redirect_uris: &[&str; 2],
    ) -> Result<bool> {
        self.0.any_live_for_redirect(statuses, live, redirect_uris)
    }
}

impl MaintenanceRows for RowChangedUnderneath<'_> {
    fn delete_of_server(
        &mut self,
        server_id: &str,
        client_id: Option<&str>,
        statuses: &[Status],
    ) -> Result<u64> {
        self.0.delete_of_server(server_id, client_id, statuses)
    }
    fn delete_expired_batch(&mut self, expired_by: i64, limit: u32) -> Result<Vec<Status>> {
        self.0.delete_expired_batch(expired_by, limit)
    }
    fn delete_ended_chunk(
        &mut self,
        statuses: &[Status],
        ended_by: i64,
        after: i64,
        walk: u32,
        limit: u32,
    ) -> Result<Chunk> {
        self.0
            .delete_ended_chunk(statuses, ended_by, after, walk, limit)
    }
    fn count_removable(
        &mut self,
        expired_by: i64,
        ended: Option<(&[Status], i64)>,
    ) -> Result<Vec<(Status, u64)>> {
        self.0.count_removable(expired_by, ended)
    }
    fn stats(&mut self, expired_by: i64) -> Result<Vec<StatusStats>> {
        self.0.stats(expired_by)
    }
    fn list(
        &mut self,
        server_id: Option<&str>,
        status: Option<Status>,
        limit: Option<u32>,
    ) -> Result<Vec<ListedRow>> {
        self.0.list(server_id, status, limit)
    }
}

#[test]
fn a_guarded_update_that_changes_no_row_rolls_back_and_hands_nothing_out() {
    let store = Store::open_in_memory().unwrap();
    let flow = store.begin(BeginRequest::new("srv")).unwrap();
    let key = crate::pkce::state_key(flow.state().secret());
    let stale = store.engine().write(Wipe::Secret, |tx| {
        step_in_tx(
            &mut RowChangedUnderneath(tx),
            &Step::Consume {
                key: &key,
                expect_server: None,
            },
        )
    });
    match stale {
        Err(e @ Error::Storage(_)) => {
            let text = e.cause_chain();
            assert!(text.contains("guarded update changed no row"), "{text}");
            assert!(!text.contains(flow.state().secret()), "{text}");
        }
        other => panic!("expected a storage error, got {:?}", other.map(|s| s.did)),
    }
    let result = CallbackResult::Code("code");
    let expect = Expectations::default();
    let recorded = store.engine().write(Wipe::Nothing, |tx| {
        step_in_tx(
            &mut RowChangedUnderneath(tx),
            &Step::Record {
                key: &key,
                result: &result,
                expect: &expect,
                redirects: None,
            },
        )
    });
    assert!(
        matches!(recorded, Err(Error::Storage(_))),
        "{:?}",
        recorded.map(|s| s.did)
    );
    // Nothing was changed: the flow is still pending and consumes once.
    assert_eq!(
        store.check(flow.state().secret()).unwrap().status,
        Status::Pending
    );
    store.consume(flow.state().secret()).unwrap();
}
