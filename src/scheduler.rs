//! Who downloads which bytes of one file, decided again every time a connection frees up.
//!
//! The file's missing bytes are either *holes* (nobody is fetching them) or *slots* (one or two
//! connections are). A connection asking for work gets, in order of preference:
//!
//! 1. the first hole;
//! 2. a share of the slot expected to finish last, split in proportion to the two connections'
//!    speeds, if both parts are at least `min_split` (work stealing: aria2c never steals from a
//!    busy piece, which is its 11 s straggler tail);
//! 3. a *race* of the slot expected to finish last, when its holder is far slower than the
//!    file's reference speed and still needs a while, whatever the size of its rest: a fresh
//!    connection fetches the same bytes from the same position, the first to commit a byte wins
//!    it, and the loser stops. A racer that proves no faster than the holder gives up;
//! 4. nothing for now (wait: a slot may be released later), or nothing ever (all done).
//!
//! The reference speed is the median of the running and recently finished connections; until
//! a fresh connection has been seen to be no faster, it is at least [`TRICKLE_FLOOR`], so a
//! trickle is raced or replaced even when nothing faster has been seen (every connection slow,
//! or only one). Once a racer was no faster, the server is the limit and the floor is off.
//!
//! Ownership of bytes is decided only by [`Scheduler::commit`], under the lock, before the bytes
//! are written: two connections never write the same byte, and no byte is written outside the
//! range some connection was given. The scheduler does no I/O.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::range::{ByteRange, RangeSet};

/// A connection slower than this fraction of the median of its peers is replaced.
const SLOW_FRACTION: f64 = 0.3;
/// How long a connection may run before its speed is judged.
const GRACE: Duration = Duration::from_millis(500);
/// No piece is split off that a typical connection fetches faster than this: a new request
/// costs round trips, and the victim drops a connection with data in flight. On a fast link
/// this, not `--chunk-size`, is the limit (loopback: ~40 MB, not 1 MiB).
const MIN_PIECE_TIME: f64 = 0.2;
/// Slots raced at the same time, at most.
const MAX_RACES: usize = 2;
/// A race only starts when the holder needs at least this long to finish alone.
const RACE_MIN_REMAINING: Duration = Duration::from_millis(500);
/// Races of one slot, at most: a path that stays slow is not raced forever.
const MAX_SLOT_RACES: u32 = 2;
/// The reference speed is at least this until a fresh connection proves no faster: a connection
/// below `SLOW_FRACTION` of it (about 77 KiB/s) is a trickle worth trying to replace even with no
/// faster peer to compare it with. One failed try turns this off for the file.
pub const TRICKLE_FLOOR: f64 = 256.0 * 1024.0;
/// A racer must reach this multiple of the holder's speed within [`GRACE`], or give up.
const RACE_WIN_FACTOR: f64 = 2.0;

/// A connection's current assignment: fetch `start..end` of slot `slot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    pub slot: usize,
    pub start: u64,
    pub end: u64,
    pub how: How,
}

/// How a claim came about, for the verbose log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// Bytes nobody was fetching.
    Hole,
    /// The upper part of another connection's range.
    Stolen,
    /// The same bytes as a slow connection; the first to arrive wins.
    Race,
}

/// What a connection should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Work(Claim),
    /// Nothing to take now; ask again after [`Scheduler::wait`].
    Wait,
    /// Every byte is on disk, or this connection is no longer wanted.
    Done,
}

/// The answer to [`Scheduler::commit`].
#[derive(Debug, PartialEq, Eq)]
pub struct Commit {
    /// The part of the offered bytes this connection owns and must write now.
    pub write: Option<ByteRange>,
    /// False when the connection should stop reading this claim (its end was reached, it was
    /// shortened by a steal, or it lost a race).
    pub more: bool,
}

#[derive(Debug)]
struct Slot {
    /// Next byte nobody has committed.
    pos: u64,
    /// End of the slot; lowered when another connection steals the upper part.
    end: u64,
    /// Connections fetching this slot (2 while raced).
    holders: u32,
    /// Latest measured speed of the holder, bytes per second (0 = not measured yet). While the
    /// slot is raced, the original holder's: the racer's own is judged against it.
    speed: f64,
    /// Races of this slot so far.
    races: u32,
    /// Where the slot started and when, for its average speed when it ends unmeasured (a slot
    /// done within one measuring period still tells how fast this server can be).
    first: u64,
    opened: Instant,
}

impl Slot {
    fn remaining(&self) -> u64 {
        self.end.saturating_sub(self.pos)
    }

    /// Seconds this slot still needs at its holder's speed (`fallback` when unmeasured).
    fn eta(&self, fallback: f64) -> f64 {
        let speed = if self.speed > 0.0 {
            self.speed
        } else {
            fallback
        };
        if speed > 0.0 {
            self.remaining() as f64 / speed
        } else {
            self.remaining() as f64
        }
    }
}

#[derive(Debug)]
struct State {
    holes: Vec<ByteRange>,
    slots: Vec<Option<Slot>>,
    /// Bytes whose write has completed (not necessarily synced).
    done: RangeSet,
    /// Connections allowed; lowered when a server refuses extra ones.
    allowed: usize,
    /// Connections currently running a worker loop.
    workers: usize,
    /// False once the server has broken a range request: no new splits.
    splittable: bool,
    /// Speeds of recently finished slots. At the end of a download the few slots still running
    /// may all be slow; without this memory they would look typical and never be raced.
    recent: std::collections::VecDeque<f64>,
    /// True once a fresh connection was no faster than a slow one: the server is the limit,
    /// and [`TRICKLE_FLOOR`] no longer applies.
    limited: bool,
}

/// The shared plan for one file. See the module docs.
#[derive(Debug)]
pub struct Scheduler {
    size: u64,
    min_split: u64,
    state: Mutex<State>,
    changed: tokio::sync::Notify,
    /// Notified when the last byte is written, so stragglers (a race's loser, a connection
    /// between two chunks) need not be waited for.
    finished: tokio::sync::Notify,
}

impl Scheduler {
    /// A plan for a file of `size` bytes of which `done` are already on disk.
    pub fn new(size: u64, done: RangeSet, min_split: u64, connections: usize) -> Scheduler {
        Scheduler {
            size,
            min_split: min_split.max(1),
            state: Mutex::new(State {
                holes: done.gaps(size),
                slots: Vec::new(),
                done,
                allowed: connections.max(1),
                workers: 0,
                splittable: true,
                recent: Default::default(),
                limited: false,
            }),
            changed: tokio::sync::Notify::new(),
            finished: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock is a bug that already failed the download.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a connection; false if the file already has as many as it may have.
    pub fn join(&self) -> bool {
        let mut s = self.lock();
        if s.workers >= s.allowed {
            return false;
        }
        s.workers += 1;
        true
    }

    /// Unregisters a connection that stops for any reason other than [`Next::Done`], [`shed`]
    /// or [`stop_splitting`] (which unregister it themselves).
    ///
    /// [`shed`]: Scheduler::shed
    /// [`stop_splitting`]: Scheduler::stop_splitting
    pub fn leave(&self) {
        self.lock().workers -= 1;
        self.changed.notify_waiters();
    }

    /// True when the file has other connections besides the caller's.
    pub fn has_peers(&self) -> bool {
        self.lock().workers > 1
    }

    /// Lowers the number of connections by one because the server refused an extra one, and
    /// unregisters the caller. Returns false (and changes nothing) if the caller is the last
    /// connection, which must instead keep retrying.
    pub fn shed(&self) -> bool {
        let mut s = self.lock();
        if s.workers <= 1 {
            return false;
        }
        s.workers -= 1;
        s.allowed = s.allowed.min(s.workers).max(1);
        drop(s);
        self.changed.notify_waiters();
        true
    }

    /// Stops all splitting after a range violation: from now on one connection. Unregisters the
    /// caller and returns true if others remain; false if the caller is the last connection
    /// (the file then needs another strategy).
    pub fn stop_splitting(&self) -> bool {
        let mut s = self.lock();
        s.splittable = false;
        s.allowed = 1;
        if s.workers <= 1 {
            return false;
        }
        s.workers -= 1;
        drop(s);
        self.changed.notify_waiters();
        true
    }

    /// Where the slot of `claim` stands: the bytes nobody has committed yet, or `None` when the
    /// slot is finished.
    pub fn position(&self, claim: &Claim) -> Option<ByteRange> {
        let s = self.lock();
        let slot = s.slots[claim.slot].as_ref()?;
        (slot.pos < slot.end).then(|| ByteRange::new(slot.pos, slot.end))
    }

    /// The next thing for a connection to do. A connection told [`Next::Done`] has left.
    pub fn next(&self) -> Next {
        let mut s = self.lock();
        if s.workers > s.allowed {
            s.workers -= 1;
            return Next::Done;
        }
        if !s.holes.is_empty() {
            let hole = s.holes.remove(0);
            return Next::Work(new_slot(&mut s, hole, How::Hole));
        }
        if s.slots.iter().all(Option::is_none) {
            s.workers -= 1;
            return Next::Done;
        }
        if !s.splittable {
            return Next::Wait;
        }
        let median = typical_speed(&s, None);
        if let Some(claim) = self.steal(&mut s, median) {
            return Next::Work(claim);
        }
        if let Some(id) = race_candidate(&s) {
            let slot = s.slots[id].as_mut().expect("a candidate is a live slot");
            slot.holders += 1;
            slot.races += 1;
            return Next::Work(Claim {
                slot: id,
                start: slot.pos,
                end: slot.end,
                how: How::Race,
            });
        }
        Next::Wait
    }

    /// Takes the upper part of the slot expected to finish last.
    fn steal(&self, s: &mut State, median: f64) -> Option<Claim> {
        let min_piece = self.min_split.max((median * MIN_PIECE_TIME) as u64);
        let victim = s
            .slots
            .iter_mut()
            .flatten()
            .filter(|slot| slot.remaining() >= 2 * min_piece)
            .max_by(|a, b| a.eta(median).total_cmp(&b.eta(median)))?;
        let remaining = victim.remaining();
        // Give the thief the share that makes both finish together: a thief at the median speed
        // takes median / (median + victim) of the rest. Unmeasured speeds split in half.
        let share = if victim.speed > 0.0 && median > 0.0 {
            (median / (median + victim.speed)).clamp(0.5, 0.95)
        } else {
            0.5
        };
        let take = ((remaining as f64 * share) as u64).clamp(min_piece, remaining - min_piece);
        let mid = victim.end - take;
        let stolen = ByteRange::new(mid, victim.end);
        victim.end = mid;
        Some(new_slot(s, stolen, How::Stolen))
    }

    /// Offers `len` bytes that a connection of `claim` received at offset `from`. Returns the
    /// part it owns (to write now) and whether it should keep reading.
    pub fn commit(&self, claim: &Claim, from: u64, len: u64) -> Commit {
        let mut s = self.lock();
        let Some(slot) = s.slots[claim.slot].as_mut() else {
            return Commit {
                write: None,
                more: false,
            };
        };
        let to = from + len;
        // Invariant: a holder is never ahead of its slot (it started at `pos` and only commits
        // advance either). So the offered bytes start at or before `pos`: no gap is possible.
        debug_assert!(
            from <= slot.pos,
            "commit at {from} beyond slot pos {}",
            slot.pos
        );
        let start = from.max(slot.pos);
        let end = to.min(slot.end);
        let write = (end > start).then(|| ByteRange::new(start, end));
        if let Some(w) = write {
            slot.pos = w.end;
        }
        // Behind a racing peer by a whole chunk: this connection lost the race.
        let lost = slot.holders > 1 && write.is_none() && len > 0;
        let more = to < slot.end && slot.pos < slot.end && !lost;
        Commit { write, more }
    }

    /// Records that `range` is now written to the file.
    pub fn written(&self, range: ByteRange) {
        let mut s = self.lock();
        s.done.insert(range);
        if s.done.covers(self.size) {
            self.finished.notify_one();
        }
    }

    /// Resolves once every byte is written (immediately if that already happened).
    pub async fn wait_finished(&self) {
        if !self.complete() {
            self.finished.notified().await;
        }
    }

    /// True when nothing is left to do for `claim`'s slot: stop reading its reply.
    pub fn is_over(&self, claim: &Claim, at: u64) -> bool {
        match self.lock().slots[claim.slot].as_ref() {
            // Past the (possibly lowered) end, or behind a racing peer by more than it holds.
            Some(slot) => at >= slot.end || slot.pos >= slot.end,
            None => true,
        }
    }

    /// Records the holder's measured speed, for stealing and slow-connection decisions.
    pub fn report_speed(&self, claim: &Claim, bytes_per_sec: f64) {
        if let Some(slot) = self.lock().slots[claim.slot].as_mut() {
            // While raced, the slot keeps its holder's speed, the racer's yardstick.
            if claim.how != How::Race || slot.holders == 1 {
                slot.speed = bytes_per_sec;
            }
        }
    }

    /// For a racer still racing: true when, after [`GRACE`], it is not clearly faster than the
    /// connection it races. It should stop; the server is the limit, so the file stops racing
    /// and replacing connections on the trickle floor alone.
    pub fn race_is_hopeless(&self, claim: &Claim, speed: f64, running_for: Duration) -> bool {
        if claim.how != How::Race || running_for < GRACE {
            return false;
        }
        let mut s = self.lock();
        let hopeless = s.slots[claim.slot]
            .as_ref()
            .is_some_and(|slot| slot.holders > 1 && speed < RACE_WIN_FACTOR * slot.speed);
        if hopeless {
            s.limited = true;
        }
        hopeless
    }

    /// When this connection is far slower than its peers and should give its range back to be
    /// fetched on a fresh connection, returns how many times slower it is.
    pub fn should_yield(&self, claim: &Claim, speed: f64, running_for: Duration) -> Option<f64> {
        if running_for < GRACE {
            return None;
        }
        let s = self.lock();
        let slot = s.slots[claim.slot].as_ref()?;
        if !s.splittable || slot.holders > 1 {
            return None;
        }
        let reference = reference_speed(&s, Some(claim.slot));
        // Only worth it if the rest would take this connection noticeably long.
        let worth = slot.remaining() as f64 / speed.max(1.0) > 1.0;
        (speed < SLOW_FRACTION * reference && worth).then(|| reference / speed.max(1.0))
    }

    /// Gives a claim back. If nobody else holds its slot, the unfetched rest becomes a hole.
    pub fn release(&self, claim: &Claim) {
        let mut s = self.lock();
        let Some(slot) = s.slots[claim.slot].as_mut() else {
            return;
        };
        slot.holders -= 1;
        if slot.holders == 0 {
            let rest = ByteRange::new(slot.pos, slot.end.max(slot.pos));
            // At most the bytes over one measuring period: a slot done in a millisecond
            // would otherwise make every other connection look slow.
            let speed = match slot.speed {
                0.0 => {
                    (slot.pos - slot.first) as f64 / slot.opened.elapsed().as_secs_f64().max(0.1)
                }
                measured => measured,
            };
            s.slots[claim.slot] = None;
            if speed > 0.0 {
                if s.recent.len() == 32 {
                    s.recent.pop_front();
                }
                s.recent.push_back(speed);
            }
            if !rest.is_empty() {
                let at = s.holes.partition_point(|h| h.start < rest.start);
                s.holes.insert(at, rest);
            }
        }
        drop(s);
        self.changed.notify_waiters();
    }

    /// Waits until a slot is released or a connection leaves, or a short while passes (speeds
    /// change, so a race may become worthwhile).
    pub async fn wait(&self) {
        let _ = tokio::time::timeout(Duration::from_millis(100), self.changed.notified()).await;
    }

    /// The bytes written so far.
    pub fn done(&self) -> RangeSet {
        self.lock().done.clone()
    }

    /// True when another connection would find work: a hole, or a range worth splitting.
    pub fn wants_more(&self) -> bool {
        let s = self.lock();
        if s.workers >= s.allowed || !s.splittable {
            return false;
        }
        let min_piece = self
            .min_split
            .max((typical_speed(&s, None) * MIN_PIECE_TIME) as u64);
        // Idle connections find races themselves; with none, a trickle is worth a new one.
        let busy: u32 = s.slots.iter().flatten().map(|slot| slot.holders).sum();
        let idle = s.workers > busy as usize;
        !s.holes.is_empty()
            || s.slots
                .iter()
                .flatten()
                .any(|slot| slot.remaining() >= 2 * min_piece)
            || (!idle && race_candidate(&s).is_some())
    }

    /// True when every byte of the file is written.
    pub fn complete(&self) -> bool {
        self.lock().done.covers(self.size)
    }
}

fn new_slot(s: &mut State, r: ByteRange, how: How) -> Claim {
    let slot = Slot {
        pos: r.start,
        end: r.end,
        holders: 1,
        speed: 0.0,
        races: 0,
        first: r.start,
        opened: Instant::now(),
    };
    let id = match s.slots.iter().position(Option::is_none) {
        Some(i) => {
            s.slots[i] = Some(slot);
            i
        }
        None => {
            s.slots.push(Some(slot));
            s.slots.len() - 1
        }
    };
    Claim {
        slot: id,
        start: r.start,
        end: r.end,
        how,
    }
}

/// The median speed of the running slots (except `exclude`) and the recently finished ones;
/// 0 when fewer than two are known, since one connection is no reference.
fn typical_speed(s: &State, exclude: Option<usize>) -> f64 {
    let running = s
        .slots
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != exclude)
        .filter_map(|(_, p)| p.as_ref())
        .map(|p| p.speed);
    let mut speeds: Vec<f64> = running
        .chain(s.recent.iter().copied())
        .filter(|&v| v > 0.0)
        .collect();
    if speeds.len() < 2 {
        return 0.0;
    }
    speeds.sort_by(f64::total_cmp);
    speeds[speeds.len() / 2]
}

/// The speed a connection of this file should reach: the typical one, and at least
/// [`TRICKLE_FLOOR`] until the server has been seen to be the limit.
fn reference_speed(s: &State, exclude: Option<usize>) -> f64 {
    let typical = typical_speed(s, exclude);
    match s.limited {
        true => typical,
        false => typical.max(TRICKLE_FLOOR),
    }
}

/// The slot to race, if any: the one expected to finish last, if its holder is far slower than
/// the reference speed and still needs a while.
fn race_candidate(s: &State) -> Option<usize> {
    // The tail needs one or two races; more means the machine, not the server, is the limit.
    let racing = s
        .slots
        .iter()
        .flatten()
        .filter(|slot| slot.holders > 1)
        .count();
    if !s.splittable || racing >= MAX_RACES {
        return None;
    }
    let reference = reference_speed(s, None);
    let (id, slot) = s
        .slots
        .iter()
        .enumerate()
        .filter_map(|(i, slot)| slot.as_ref().map(|slot| (i, slot)))
        // Only measured slots: an unmeasured one may be perfectly fast.
        .filter(|(_, slot)| {
            slot.holders == 1
                && slot.remaining() > 0
                && slot.speed > 0.0
                && slot.races < MAX_SLOT_RACES
                && slot.opened.elapsed() >= GRACE
        })
        .max_by(|a, b| a.1.eta(reference).total_cmp(&b.1.eta(reference)))?;
    // Racing doubles the traffic for these bytes: only for a holder that is really slow (the
    // same test as replacing it), not one that is momentarily behind.
    let eta = slot.eta(reference);
    (eta >= RACE_MIN_REMAINING.as_secs_f64() && slot.speed < SLOW_FRACTION * reference)
        .then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn work(n: Next) -> Claim {
        match n {
            Next::Work(c) => c,
            other => panic!("expected work, got {other:?}"),
        }
    }

    #[test]
    fn connections_split_the_file_evenly() {
        let s = Scheduler::new(16 * MIB, RangeSet::new(), MIB, 16);
        let mut claims: Vec<Claim> = (0..16).map(|_| work(s.next())).collect();
        claims.sort_by_key(|c| c.start);
        for (i, c) in claims.iter().enumerate() {
            assert_eq!(c.start, i as u64 * MIB);
        }
        // Each slot's end was lowered by later steals; commits respect the lowered end.
        let first = claims[0];
        let c = s.commit(&first, 0, 2 * MIB);
        assert_eq!(c.write, Some(ByteRange::new(0, MIB)));
        assert!(
            !c.more,
            "the first connection's range was stolen down to 1 MiB"
        );
    }

    #[test]
    fn nothing_is_split_below_the_minimum() {
        let s = Scheduler::new(3 * MIB, RangeSet::new(), 2 * MIB, 8);
        let a = work(s.next());
        assert_eq!((a.start, a.end), (0, 3 * MIB));
        assert_eq!(s.next(), Next::Wait, "3 MiB cannot give two 2 MiB parts");
    }

    #[test]
    fn released_rest_becomes_a_hole_and_is_taken_next() {
        let s = Scheduler::new(10 * MIB, RangeSet::new(), MIB, 2);
        let a = work(s.next());
        let c = s.commit(&a, 0, 3 * MIB);
        s.written(c.write.unwrap());
        s.release(&a);
        let b = work(s.next());
        assert_eq!((b.start, b.end), (3 * MIB, 10 * MIB));
        assert_eq!(s.done().len(), 3 * MIB);
    }

    #[test]
    fn resume_starts_with_the_holes() {
        let mut done = RangeSet::new();
        done.insert(ByteRange::new(0, 4 * MIB));
        done.insert(ByteRange::new(6 * MIB, 8 * MIB));
        let s = Scheduler::new(8 * MIB, done, MIB, 4);
        assert!(s.join());
        let a = work(s.next());
        assert_eq!((a.start, a.end), (4 * MIB, 6 * MIB));
        let c = s.commit(&a, 4 * MIB, 2 * MIB);
        s.written(c.write.unwrap());
        s.release(&a);
        assert!(s.complete());
        assert_eq!(s.next(), Next::Done);
    }

    #[test]
    fn steals_favour_the_slow_connection() {
        let s = Scheduler::new(40 * MIB, RangeSet::new(), MIB, 4);
        let slow = work(s.next());
        let fast = work(s.next()); // took 20..40
        let fast2 = work(s.next()); // takes half of one of them
        s.report_speed(&slow, 1.0 * MIB as f64);
        s.report_speed(&fast, 8.0 * MIB as f64);
        s.report_speed(&fast2, 8.0 * MIB as f64);
        let thief = work(s.next());
        // The victim is the slot that needs longest: the slow one, and the thief takes most of it.
        assert!(thief.start < 20 * MIB, "{thief:?}");
        let slow_end = thief.start;
        assert!(slow_end - slow.start < thief.end - thief.start);
    }

    /// A slot running since `GRACE` ago (old enough to be judged) at `speed`.
    fn judged(pos: u64, end: u64, speed: f64) -> Option<Slot> {
        Some(Slot {
            pos,
            end,
            holders: 1,
            speed,
            races: 0,
            first: pos,
            opened: Instant::now() - GRACE,
        })
    }

    /// Makes the first slot old enough to be judged, at `speed`.
    fn age_first_slot(s: &Scheduler, speed: f64) {
        let mut st = s.lock();
        let slot = st.slots[0].as_mut().unwrap();
        slot.speed = speed;
        slot.opened = Instant::now() - GRACE;
    }

    #[test]
    fn a_race_has_one_winner_per_byte() {
        let s = Scheduler::new(4 * MIB, RangeSet::new(), 4 * MIB, 3);
        let holder = work(s.next());
        // Pretend peers are fast and this slot is slow.
        age_first_slot(&s, 100_000.0);
        {
            let mut st = s.lock();
            st.slots.push(judged(0, 0, 10.0 * MIB as f64));
            st.slots.push(judged(0, 0, 10.0 * MIB as f64));
        }
        let racer = work(s.next());
        assert_eq!((racer.slot, racer.how), (holder.slot, How::Race));
        let a = s.commit(&holder, 0, MIB);
        assert_eq!(a.write, Some(ByteRange::new(0, MIB)));
        // The racer's first MiB is already owned: it writes nothing and, being behind, stops.
        let b = s.commit(&racer, 0, MIB);
        assert_eq!(b.write, None);
        assert!(!b.more);
    }

    #[test]
    fn a_lone_trickle_is_raced_below_any_split_size() {
        // One connection, nothing to compare it with, its rest far below the split minimum.
        let s = Scheduler::new(MIB, RangeSet::new(), 4 * MIB, 2);
        assert!(s.join());
        let holder = work(s.next());
        assert!(s.join());
        assert_eq!(s.next(), Next::Wait, "unmeasured: it may be fast");
        age_first_slot(&s, 1024.0);
        let racer = work(s.next());
        assert_eq!((racer.slot, racer.how), (holder.slot, How::Race));
        // The racer reports its speed; the slot keeps the holder's as the yardstick.
        s.report_speed(&racer, 1024.0);
        assert_eq!(s.lock().slots[0].as_ref().unwrap().speed, 1024.0);
        // No faster after the grace period: hopeless, and the floor is off for the file.
        assert!(!s.race_is_hopeless(&racer, 1500.0, GRACE / 2));
        assert!(s.race_is_hopeless(&racer, 1500.0, GRACE));
        s.release(&racer);
        assert_eq!(
            s.next(),
            Next::Wait,
            "the server is the limit: no more races"
        );
    }

    #[test]
    fn with_no_idle_connection_a_trickle_asks_for_a_new_one() {
        let s = Scheduler::new(MIB, RangeSet::new(), 4 * MIB, 2);
        assert!(s.join());
        let _holder = work(s.next());
        assert!(
            !s.wants_more(),
            "nothing to split, nothing known to be slow"
        );
        age_first_slot(&s, 1024.0);
        assert!(s.wants_more(), "a trickle is worth a fresh connection");
    }

    #[test]
    fn slots_done_before_their_first_measurement_count_as_peers() {
        let s = Scheduler::new(8 * MIB, RangeSet::new(), MIB, 2);
        let fast = work(s.next());
        let slow = work(s.next());
        let c = s.commit(&fast, fast.start, fast.end - fast.start);
        s.written(c.write.unwrap());
        s.release(&fast); // never measured: its average speed is remembered
        let mut st = s.lock();
        st.slots[slow.slot].as_mut().unwrap().speed = 1.0;
        assert_eq!(st.recent.len(), 1);
        assert!(st.recent[0] > 1000.0, "{:?}", st.recent);
        assert_eq!(typical_speed(&st, None), st.recent[0]);
    }

    #[test]
    fn shedding_keeps_at_least_one_connection() {
        let s = Scheduler::new(MIB, RangeSet::new(), MIB, 4);
        assert!(s.join() && s.join());
        assert!(s.shed(), "two connections: one may go");
        assert!(!s.shed(), "the last one stays");
        assert!(!s.join(), "allowed was lowered to 1");
    }
}
