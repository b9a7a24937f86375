//! Work stealing: when some workers have idle threads and others hold tasks
//! beyond their threads (sent, not started), the scheduler asks a busy worker
//! to give such tasks up ([`Action::Steal`]). Only the worker knows whether a
//! task has started; it answers ([`Event::StealResponse`]), and a task it gave
//! up is sent to the least occupied worker that is not paused. A task already
//! running stays. A worker paused by memory has its whole backlog stolen.

use dask_core::Key;

use super::{Action, InvariantError, SchedulerState, Status, WorkerId};

/// At most this many of a victim's tasks are looked at per steal (bounds the
/// cost per event on a worker with a long backlog).
const SCAN: usize = 256;

impl SchedulerState {
    /// Sends steal requests from idle slots to busy workers' backlogs.
    pub(super) fn balance(&mut self) {
        if !self.stealing || self.workers.len() < 2 {
            return;
        }
        let idle_slots: usize = self
            .workers
            .values()
            .filter(|ws| !ws.paused)
            .map(|ws| (ws.nthreads as usize).saturating_sub(ws.occupied()))
            .sum();
        let mut budget = idle_slots.saturating_sub(self.steals_in_flight.len());
        if budget == 0 {
            return;
        }
        let mut victims: Vec<(usize, WorkerId)> = self
            .workers
            .iter()
            .map(|(w, ws)| {
                let asked = self.steals_in_flight.values().filter(|v| *v == w).count();
                // A paused worker starts nothing: all its backlog may go.
                let running = if ws.paused { 0 } else { ws.nthreads as usize };
                let excess = ws.occupied().saturating_sub(running + asked);
                (excess, *w)
            })
            .filter(|(excess, _)| *excess > 0)
            .collect();
        victims.sort_unstable_by(|a, b| b.cmp(a));
        for (excess, victim) in victims {
            let mut candidates: Vec<(super::Priority, Key)> = self.workers[&victim]
                .processing
                .iter()
                .filter(|k| !self.steals_in_flight.contains_key(*k))
                .take(SCAN)
                .filter_map(|k| {
                    let ts = self.tasks.get(k)?;
                    ts.restrictions.is_none().then(|| (ts.priority, k.clone()))
                })
                .collect();
            // The lowest-priority tasks are the last a worker would start.
            candidates.sort_unstable_by(|a, b| b.cmp(a));
            for (_, key) in candidates.into_iter().take(excess.min(budget)) {
                self.steals_in_flight.insert(key.clone(), victim);
                self.actions.push(Action::Steal {
                    worker: victim,
                    key,
                });
                budget -= 1;
            }
            if budget == 0 {
                break;
            }
        }
    }

    /// The victim's answer: a task it gave up goes to the least occupied worker.
    pub(super) fn steal_response(
        &mut self,
        victim: WorkerId,
        key: &Key,
        stolen: bool,
    ) -> Result<(), InvariantError> {
        if self.steals_in_flight.get(key) == Some(&victim) {
            self.steals_in_flight.remove(key);
        }
        let still_there = self
            .tasks
            .get(key)
            .is_some_and(|t| t.status == Status::Processing && t.processing_on == Some(victim));
        if !stolen || !still_there {
            return Ok(()); // it keeps the task, or the task moved on meanwhile
        }
        // A restricted task only moves among its allowed workers (a stray
        // answer may name one never asked).
        let allowed = self.tasks[key].restrictions.clone();
        let thief = self
            .workers
            .iter()
            .filter(|(w, _)| allowed.as_ref().is_none_or(|r| r.contains(w)))
            .min_by_key(|(w, ws)| {
                let load = ws.occupied().saturating_sub(usize::from(**w == victim));
                let occupancy = (load as u64 * 1000) / u64::from(ws.nthreads);
                (ws.paused, occupancy, **w == victim, **w)
            })
            .map(|(w, _)| *w)
            .ok_or_else(|| self.invariant(key, "processing with no worker".into()))?;
        if let Some(ws) = self.workers.get_mut(&victim) {
            ws.stop_processing(key);
        }
        self.workers
            .get_mut(&thief)
            .expect("picked among workers")
            .processing
            .insert(key.clone());
        let ts = self.tasks.get_mut(key).expect("checked");
        ts.processing_on = Some(thief);
        self.last_run_id += 1;
        ts.run_id = self.last_run_id;
        ts.story
            .push((Status::Processing, Status::Processing, "stolen"));
        let deps = ts.dependencies.clone();
        let who_has = deps
            .iter()
            .map(|d| (d.clone(), self.tasks[d].who_has.iter().copied().collect()))
            .collect();
        let ts = &self.tasks[key];
        self.actions.push(Action::Compute {
            worker: thief,
            key: key.clone(),
            run_spec: ts.run_spec.clone(),
            run_id: ts.run_id,
            who_has,
            priority: ts.priority,
        });
        self.touched.push(key.clone());
        Ok(())
    }
}
