//! Changes to the Desk360 account while a run lists and fetches it ([`crate::Churn`]), and the
//! tickets a test creates by hand ([`crate::Sandbox::create_ticket`]), drawn from one seeded
//! generator so the sequence of changes is the same on every run.

use crate::config::ChurnEvent;
use crate::state::Shared;

/// Where [`crate::Churn`] stands: Desk360 requests counted, changes made, and the generator the
/// changes are drawn from (seeded from the sandbox seed, so the sequence of changes is the same on
/// every run whatever the timing).
pub(super) struct ChurnState {
    requests: u64,
    updates: u32,
    creates: u32,
    /// The kind of the next change while both kinds remain (they alternate).
    next_is_create: bool,
    rng: fastrand::Rng,
    pub log: Vec<ChurnEvent>,
}

impl ChurnState {
    pub fn new(seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed ^ 0xc4a2_9e5d_0b17_3f61);
        Self {
            requests: 0,
            updates: 0,
            creates: 0,
            next_is_create: rng.bool(),
            rng,
            log: Vec::new(),
        }
    }
}

/// Counts one Desk360 request (attachment downloads are not counted) and, when [`crate::Churn`]
/// says a change is due, applies it before the request is served: after `start_after` requests,
/// one change every `every` requests (on request `start_after + k·every`, k ≥ 1), alternating
/// updates and creations (the first kind drawn from the seed) until both counts are done.
pub(super) fn tick(st: &mut ChurnState, shared: &Shared) {
    let Some(churn) = &shared.config.churn else {
        return;
    };
    st.requests += 1;
    let n = st.requests;
    let every = churn.every.max(1);
    if n <= churn.start_after || !(n - churn.start_after).is_multiple_of(every) {
        return;
    }
    let updates_left = st.updates < churn.updates;
    let creates_left = st.creates < churn.creates;
    let create = match (updates_left, creates_left) {
        (false, false) => return,
        (true, true) => {
            let c = st.next_is_create;
            st.next_is_create = !c;
            c
        }
        (_, creates_left) => creates_left,
    };
    let seed = st.rng.u64(..);
    let key = if create {
        st.creates += 1;
        let products: Vec<i64> = shared.dataset().products.iter().map(|p| p.id).collect();
        if products.is_empty() {
            return;
        }
        let product_id = products[st.rng.usize(..products.len())];
        shared.change_dataset(|ds| ds.create_ticket(product_id, seed))
    } else {
        st.updates += 1;
        shared.change_dataset(|ds| ds.append_random_message(seed))
    };
    if let Some(key) = key {
        tracing::debug!(?key, create, at_request = n, "sandbox churn");
        st.log.push(ChurnEvent {
            key,
            created: create,
            at_request: n,
        });
    }
}

/// One ticket created by hand, drawn from the churn generator so by-hand creations are
/// deterministic too.
pub(super) fn create_ticket(
    st: &mut ChurnState,
    shared: &Shared,
    product_id: i64,
) -> Option<(i64, i64)> {
    let seed = st.rng.u64(..);
    shared.change_dataset(|ds| ds.create_ticket(product_id, seed))
}
