//! Action classification: turns one client's manifest requests on one repository into actions
//! (`version_check`, `pull_by_tag`, `pull_by_digest`) by the seeds' table "Image pulls action
//! classification rules". Blob requests play no part; only manifest GETs and HEADs do.
//!
//! The table, as implemented (a follower must come within the window of the action's first
//! request; "GET by different digest" is a GET whose URL names a digest other than the one the
//! action started with):
//!
//! | starting event | reference | followed by                                        | action         |
//! |----------------|-----------|----------------------------------------------------|----------------|
//! | HEAD           | tag       | –                                                  | version_check  |
//! | GET            | tag       | –                                                  | pull_by_tag    |
//! | GET            | tag       | GET by different digest                            | pull_by_tag    |
//! | HEAD           | tag       | GET by same digest                                 | pull_by_tag    |
//! | HEAD           | tag       | GET by same digest, then GET by different digest   | pull_by_tag    |
//! | GET            | digest    | –                                                  | pull_by_digest |
//! | HEAD           | digest    | –                                                  | pull_by_digest |
//! | GET            | digest    | GET by different digest                            | pull_by_digest |
//! | HEAD           | digest    | GET by same digest                                 | pull_by_digest |
//! | HEAD           | digest    | GET by same digest, then GET by different digest   | pull_by_digest |
//!
//! A request that continues no pending action ends it and starts the next one, so every request
//! belongs to exactly one action, and an action is always a contiguous run of requests.

use std::fmt;
use std::ops::Range;

use time::{Duration, OffsetDateTime};
use wharf_oci::{Digest, Reference, Tag};

/// How long after an action's first request its followers may come, unless configured.
pub const DEFAULT_WINDOW: Duration = Duration::seconds(60);

/// The HTTP method of a manifest request (the raw data's `HTTP method` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Head,
    Get,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Head => "HEAD",
            Self::Get => "GET",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The seeds' action categories (the raw data's `Action` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActionKind {
    VersionCheck,
    PullByTag,
    PullByDigest,
}

impl ActionKind {
    /// The value written in reports: `version_check`, `pull_by_tag` or `pull_by_digest`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VersionCheck => "version_check",
            Self::PullByTag => "pull_by_tag",
            Self::PullByDigest => "pull_by_digest",
        }
    }

    /// Whether the action downloaded data (`DATA_DOWNLOADS`) rather than only checked a version
    /// (`VERSION_CHECKS`).
    pub fn is_download(self) -> bool {
        self != Self::VersionCheck
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One manifest request as recorded: when, which method, what the URL named, and the digest
/// the reference resolved to (for a digest reference, that digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRequest {
    pub time: OffsetDateTime,
    pub method: Method,
    pub reference: Reference,
    pub digest: Digest,
}

/// A classified action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub kind: ActionKind,
    /// The first request's time, method and reference.
    pub time: OffsetDateTime,
    pub method: Method,
    pub reference: Reference,
    /// The digest the first request resolved to (for a multi-arch pull, the index's).
    pub digest: Digest,
    /// The positions of the requests this action consumed, counted over every request pushed
    /// to the [`Classifier`]. For a resumed action, only its followers in this run.
    pub events: Range<usize>,
    /// Begun before the classifier was resumed with it (see [`Classifier::resume`]): its first
    /// request is not among those pushed.
    pub resumed: bool,
}

impl Action {
    /// The tag the action started with, if it started with one.
    pub fn tag(&self) -> Option<&Tag> {
        match &self.reference {
            Reference::Tag(tag) => Some(tag),
            Reference::Digest(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Only the first request so far.
    Started,
    /// A HEAD followed by a GET of the same digest; a GET of another digest may still come.
    SameDigestFetched,
}

#[derive(Debug)]
struct Pending {
    start: usize,
    time: OffsetDateTime,
    method: Method,
    reference: Reference,
    digest: Digest,
    stage: Stage,
    resumed: bool,
}

/// An action that may still take followers when a classifier stops: what a batch job that
/// classifies a stream piece by piece carries from one piece to the next, so the next piece
/// needs none of the earlier requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAction {
    /// The first request's time, method and reference, and the digest it resolved to.
    pub time: OffsetDateTime,
    pub method: Method,
    pub reference: Reference,
    pub digest: Digest,
    /// A HEAD already followed by a GET of the same digest.
    pub followed: bool,
}

impl Pending {
    fn into_action(self, end: usize) -> Action {
        let kind = match (&self.reference, self.method, self.stage) {
            (Reference::Tag(_), Method::Head, Stage::Started) => ActionKind::VersionCheck,
            (Reference::Tag(_), _, _) => ActionKind::PullByTag,
            (Reference::Digest(_), _, _) => ActionKind::PullByDigest,
        };
        Action {
            kind,
            time: self.time,
            method: self.method,
            reference: self.reference,
            digest: self.digest,
            events: self.start..end,
            resumed: self.resumed,
        }
    }
}

/// What a follower does to a pending action.
enum Step {
    /// The action goes on and may take one more request.
    Continue,
    /// The action is complete with this request.
    Complete,
    /// This request is not part of the action.
    NotAFollower,
}

/// A streaming classifier for one client (hashed IP + user agent) on one repository.
///
/// Push that client's manifest requests in time order; call [`Classifier::finish`] when its
/// requests end (a batch job sorted by client, repository and time calls it at each change of
/// client or repository, and may keep using the same classifier: positions keep counting).
#[derive(Debug)]
pub struct Classifier {
    window: Duration,
    next: usize,
    pending: Option<Pending>,
}

impl Default for Classifier {
    fn default() -> Self {
        Self::new(DEFAULT_WINDOW)
    }
}

impl Classifier {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            next: 0,
            pending: None,
        }
    }

    /// Takes the next request; returns the action it completed or ended, if any.
    pub fn push(&mut self, request: &ManifestRequest) -> Option<Action> {
        let index = self.next;
        self.next += 1;
        if let Some(pending) = &mut self.pending {
            match step(pending, request, self.window) {
                Step::Continue => {
                    pending.stage = Stage::SameDigestFetched;
                    return None;
                }
                Step::Complete => {
                    return self.pending.take().map(|p| p.into_action(index + 1));
                }
                Step::NotAFollower => {}
            }
        }
        let ended = self.pending.take().map(|p| p.into_action(index));
        self.pending = Some(Pending {
            start: index,
            time: request.time,
            method: request.method,
            reference: request.reference.clone(),
            digest: request.digest.clone(),
            stage: Stage::Started,
            resumed: false,
        });
        ended
    }

    /// Continues an action an earlier classifier left open (see [`Classifier::take_open`]);
    /// returns the action pending before, if any.
    pub fn resume(&mut self, open: OpenAction) -> Option<Action> {
        let ended = self.finish();
        self.pending = Some(Pending {
            start: self.next,
            time: open.time,
            method: open.method,
            reference: open.reference,
            digest: open.digest,
            stage: if open.followed {
                Stage::SameDigestFetched
            } else {
                Stage::Started
            },
            resumed: true,
        });
        ended
    }

    /// Takes the pending action out, if it can still take a follower at `now` or later, to
    /// carry it to the classifier of the next requests, with the position of its first
    /// request (None when it was resumed); ends it (the returned action) if not.
    #[allow(clippy::type_complexity)]
    pub fn take_open(
        &mut self,
        now: OffsetDateTime,
    ) -> Result<Option<(OpenAction, Option<usize>)>, Action> {
        if let Some(ended) = self.expire(now) {
            return Err(ended);
        }
        Ok(self.pending.take().map(|p| {
            let first = (!p.resumed).then_some(p.start);
            let open = OpenAction {
                time: p.time,
                method: p.method,
                reference: p.reference,
                digest: p.digest,
                followed: p.stage == Stage::SameDigestFetched,
            };
            (open, first)
        }))
    }

    /// Ends the pending action if no follower can come any more at `now` (for a live stream
    /// that wants actions out before the client's next request).
    pub fn expire(&mut self, now: OffsetDateTime) -> Option<Action> {
        let expired = self
            .pending
            .as_ref()
            .is_some_and(|p| now - p.time > self.window);
        if expired { self.finish() } else { None }
    }

    /// Ends the pending action: the client's requests are over.
    pub fn finish(&mut self) -> Option<Action> {
        let end = self.next;
        self.pending.take().map(|p| p.into_action(end))
    }
}

fn step(pending: &Pending, request: &ManifestRequest, window: Duration) -> Step {
    let elapsed = request.time - pending.time;
    if request.method != Method::Get || elapsed.is_negative() || elapsed > window {
        return Step::NotAFollower;
    }
    let by_digest = matches!(request.reference, Reference::Digest(_));
    let same_digest = request.digest == pending.digest;
    match (pending.method, pending.stage) {
        // HEAD, then GET by the same digest. A GET by the same tag that still resolves to that
        // digest fetches the same manifest, so it counts too (helm pulls HEAD tag, GET tag).
        (Method::Head, Stage::Started)
            if same_digest && (by_digest || request.reference == pending.reference) =>
        {
            Step::Continue
        }
        // GET, then GET by a different digest (a multi-arch index, then a platform manifest).
        (Method::Get, Stage::Started) if by_digest && !same_digest => Step::Complete,
        // HEAD, GET by the same digest, then a second GET by a different digest.
        (_, Stage::SameDigestFetched) if by_digest && !same_digest => Step::Complete,
        _ => Step::NotAFollower,
    }
}

/// Classifies one client's requests on one repository, in time order.
pub fn classify(requests: &[ManifestRequest], window: Duration) -> Vec<Action> {
    let mut classifier = Classifier::new(window);
    let mut actions: Vec<Action> = requests.iter().filter_map(|r| classifier.push(r)).collect();
    actions.extend(classifier.finish());
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const AMD64: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const ARM64: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
    const OTHER: &str = "sha256:4444444444444444444444444444444444444444444444444444444444444444";

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_763_000_000 + seconds).unwrap()
    }

    /// `"HEAD v1=INDEX@0"`: method, reference (a tag resolving to a digest, or a digest), and
    /// the second it came at.
    fn req(spec: &str) -> ManifestRequest {
        let (method, rest) = spec.split_once(' ').unwrap();
        let (reference, seconds) = rest.rsplit_once('@').unwrap();
        let method = match method {
            "HEAD" => Method::Head,
            "GET" => Method::Get,
            other => panic!("bad method {other}"),
        };
        let (reference, digest) = match reference.split_once('=') {
            Some((tag, digest)) => (Reference::Tag(tag.parse().unwrap()), digest),
            None => (Reference::Digest(reference.parse().unwrap()), reference),
        };
        ManifestRequest {
            time: at(seconds.parse().unwrap()),
            method,
            reference,
            digest: digest.parse().unwrap(),
        }
    }

    fn run(specs: &[String]) -> Vec<(ActionKind, Range<usize>)> {
        let requests: Vec<_> = specs.iter().map(|s| req(s)).collect();
        classify(&requests, DEFAULT_WINDOW)
            .into_iter()
            .map(|a| (a.kind, a.events))
            .collect()
    }

    /// One case per row of the seeds' table, in the table's order.
    #[test]
    fn seed_table_rows() {
        use ActionKind::*;
        let rows: Vec<(&str, Vec<String>, ActionKind)> = vec![
            (
                "HEAD tag, N/A: version check",
                vec![format!("HEAD v1={INDEX}@0")],
                VersionCheck,
            ),
            (
                "GET tag, N/A: pull by tag",
                vec![format!("GET v1={AMD64}@0")],
                PullByTag,
            ),
            (
                "GET tag, GET by different digest: pull by tag",
                vec![format!("GET v1={INDEX}@0"), format!("GET {AMD64}@1")],
                PullByTag,
            ),
            (
                "HEAD tag, GET by same digest: pull by tag",
                vec![format!("HEAD v1={AMD64}@0"), format!("GET {AMD64}@1")],
                PullByTag,
            ),
            (
                "HEAD tag, GET by the same digest, then a second GET by a different digest",
                vec![
                    format!("HEAD v1={INDEX}@0"),
                    format!("GET {INDEX}@1"),
                    format!("GET {AMD64}@2"),
                ],
                PullByTag,
            ),
            (
                "HEAD tag, GET by same digest, then second GET by different digest",
                vec![
                    format!("HEAD latest={INDEX}@0"),
                    format!("GET {INDEX}@0"),
                    format!("GET {ARM64}@59"),
                ],
                PullByTag,
            ),
            (
                "GET digest, N/A: pull by digest",
                vec![format!("GET {AMD64}@0")],
                PullByDigest,
            ),
            (
                "HEAD digest, N/A: pull by digest",
                vec![format!("HEAD {AMD64}@0")],
                PullByDigest,
            ),
            (
                "GET digest, GET by different digest: pull by digest",
                vec![format!("GET {INDEX}@0"), format!("GET {AMD64}@1")],
                PullByDigest,
            ),
            (
                "HEAD digest, GET by same digest: pull by digest",
                vec![format!("HEAD {AMD64}@0"), format!("GET {AMD64}@1")],
                PullByDigest,
            ),
            (
                "HEAD digest, GET by same digest, then GET by different digest",
                vec![
                    format!("HEAD {INDEX}@0"),
                    format!("GET {INDEX}@1"),
                    format!("GET {AMD64}@2"),
                ],
                PullByDigest,
            ),
        ];
        assert_eq!(rows.len(), 11, "the seed table has 11 rows");
        for (row, specs, kind) in rows {
            let n = specs.len();
            assert_eq!(run(&specs), vec![(kind, 0..n)], "{row}");
        }
    }

    #[test]
    fn action_keeps_first_request_and_tag() {
        let requests = [
            req(&format!("HEAD v1={INDEX}@0")),
            req(&format!("GET {INDEX}@1")),
            req(&format!("GET {AMD64}@2")),
        ];
        let actions = classify(&requests, DEFAULT_WINDOW);
        assert_eq!(actions.len(), 1);
        let action = &actions[0];
        assert_eq!(action.method, Method::Head);
        assert_eq!(action.time, at(0));
        assert_eq!(action.tag().map(Tag::as_str), Some("v1"));
        assert_eq!(action.digest.to_string(), INDEX);
        assert_eq!(action.kind.as_str(), "pull_by_tag");
    }

    #[test]
    fn window_expiry_splits_actions() {
        use ActionKind::*;
        // The GET comes 61 s after the HEAD: a version check, then a pull by digest.
        let specs = [format!("HEAD v1={AMD64}@0"), format!("GET {AMD64}@61")];
        assert_eq!(
            run(&specs),
            vec![(VersionCheck, 0..1), (PullByDigest, 1..2)]
        );
        // Exactly at the window's end still follows.
        let specs = [format!("HEAD v1={AMD64}@0"), format!("GET {AMD64}@60")];
        assert_eq!(run(&specs), vec![(PullByTag, 0..2)]);
        // The window counts from the action's first request, not the previous one.
        let specs = [
            format!("HEAD v1={INDEX}@0"),
            format!("GET {INDEX}@40"),
            format!("GET {AMD64}@80"),
        ];
        assert_eq!(run(&specs), vec![(PullByTag, 0..2), (PullByDigest, 2..3)]);
    }

    #[test]
    fn head_by_tag_then_get_of_another_digest_is_a_check_and_a_digest_pull() {
        use ActionKind::*;
        // No row starts "HEAD tag, GET by different digest": the client already had the index.
        let specs = [format!("HEAD v1={INDEX}@0"), format!("GET {AMD64}@1")];
        assert_eq!(
            run(&specs),
            vec![(VersionCheck, 0..1), (PullByDigest, 1..2)]
        );
    }

    #[test]
    fn repeated_head_checks_are_each_a_version_check() {
        use ActionKind::*;
        let specs = [
            format!("HEAD v1={AMD64}@0"),
            format!("HEAD v1={AMD64}@5"),
            format!("HEAD v1={AMD64}@10"),
        ];
        assert_eq!(
            run(&specs),
            vec![
                (VersionCheck, 0..1),
                (VersionCheck, 1..2),
                (VersionCheck, 2..3)
            ]
        );
        // The last check before a GET of its digest turns into the pull.
        let specs = [
            format!("HEAD v1={AMD64}@0"),
            format!("HEAD v1={AMD64}@5"),
            format!("GET {AMD64}@6"),
        ];
        assert_eq!(run(&specs), vec![(VersionCheck, 0..1), (PullByTag, 1..3)]);
    }

    #[test]
    fn a_third_manifest_get_starts_a_new_action() {
        use ActionKind::*;
        let specs = [
            format!("HEAD v1={INDEX}@0"),
            format!("GET {INDEX}@1"),
            format!("GET {AMD64}@2"),
            format!("GET {ARM64}@3"),
        ];
        assert_eq!(run(&specs), vec![(PullByTag, 0..3), (PullByDigest, 3..4)]);
    }

    #[test]
    fn get_of_the_same_digest_twice_is_two_pulls() {
        use ActionKind::*;
        let specs = [format!("GET {AMD64}@0"), format!("GET {AMD64}@1")];
        assert_eq!(
            run(&specs),
            vec![(PullByDigest, 0..1), (PullByDigest, 1..2)]
        );
        // GET by tag, then GET by the digest it resolved to: not a "different digest".
        let specs = [format!("GET v1={AMD64}@0"), format!("GET {AMD64}@1")];
        assert_eq!(run(&specs), vec![(PullByTag, 0..1), (PullByDigest, 1..2)]);
    }

    #[test]
    fn a_head_never_follows() {
        use ActionKind::*;
        let specs = [format!("GET v1={INDEX}@0"), format!("HEAD {AMD64}@1")];
        assert_eq!(run(&specs), vec![(PullByTag, 0..1), (PullByDigest, 1..2)]);
        let specs = [format!("HEAD {INDEX}@0"), format!("HEAD {INDEX}@1")];
        assert_eq!(
            run(&specs),
            vec![(PullByDigest, 0..1), (PullByDigest, 1..2)]
        );
    }

    #[test]
    fn a_get_by_tag_is_not_a_get_by_different_digest() {
        use ActionKind::*;
        let specs = [format!("GET v1={INDEX}@0"), format!("GET v2={AMD64}@1")];
        assert_eq!(run(&specs), vec![(PullByTag, 0..1), (PullByTag, 1..2)]);
    }

    /// Helm SDK v4 pulls with HEAD tag then GET tag (shared/notes/clients.md §3.5): one pull.
    #[test]
    fn helm_head_tag_then_get_same_tag_is_one_pull_by_tag() {
        use ActionKind::*;
        let specs = [
            format!("HEAD 0.1.0={AMD64}@0"),
            format!("GET 0.1.0={AMD64}@0"),
        ];
        assert_eq!(run(&specs), vec![(PullByTag, 0..2)]);
        // If the tag moved between the two, the GET fetched something else.
        let specs = [
            format!("HEAD 0.1.0={AMD64}@0"),
            format!("GET 0.1.0={OTHER}@0"),
        ];
        assert_eq!(run(&specs), vec![(VersionCheck, 0..1), (PullByTag, 1..2)]);
    }

    /// The docker engine's pull of a multi-arch tag followed by another tag's check.
    #[test]
    fn docker_multi_arch_pull_then_check() {
        use ActionKind::*;
        let specs = [
            format!("HEAD v1={INDEX}@0"),
            format!("GET {INDEX}@0"),
            format!("GET {AMD64}@1"),
            format!("HEAD v2={OTHER}@30"),
        ];
        assert_eq!(run(&specs), vec![(PullByTag, 0..3), (VersionCheck, 3..4)]);
    }

    #[test]
    fn streaming_positions_count_across_finish() {
        let mut classifier = Classifier::default();
        assert_eq!(classifier.push(&req(&format!("HEAD v1={AMD64}@0"))), None);
        let first = classifier.finish().unwrap();
        assert_eq!((first.kind, first.events), (ActionKind::VersionCheck, 0..1));
        assert_eq!(classifier.finish(), None);
        assert_eq!(classifier.push(&req(&format!("GET {INDEX}@0"))), None);
        let done = classifier.push(&req(&format!("GET {AMD64}@1"))).unwrap();
        assert_eq!((done.kind, done.events), (ActionKind::PullByDigest, 1..3));
        assert_eq!(classifier.finish(), None);
    }

    #[test]
    fn expire_ends_only_actions_past_the_window() {
        let mut classifier = Classifier::new(Duration::seconds(10));
        classifier.push(&req(&format!("HEAD v1={AMD64}@0")));
        assert_eq!(classifier.expire(at(10)), None);
        let action = classifier.expire(at(11)).unwrap();
        assert_eq!(action.kind, ActionKind::VersionCheck);
        assert_eq!(classifier.expire(at(100)), None);
    }

    #[test]
    fn out_of_order_request_starts_a_new_action() {
        use ActionKind::*;
        let specs = [format!("HEAD v1={AMD64}@10"), format!("GET {AMD64}@5")];
        assert_eq!(
            run(&specs),
            vec![(VersionCheck, 0..1), (PullByDigest, 1..2)]
        );
    }

    #[test]
    fn every_request_belongs_to_exactly_one_action() {
        let specs: Vec<String> = (0..40)
            .map(|i| {
                let digest = [INDEX, AMD64, ARM64][i % 3];
                match i % 4 {
                    0 => format!("HEAD v1={digest}@{i}"),
                    1 => format!("GET {digest}@{i}"),
                    2 => format!("GET v2={digest}@{}", i * 7),
                    _ => format!("HEAD {digest}@{}", i * 7),
                }
            })
            .collect();
        let actions = run(&specs);
        let mut next = 0;
        for (_, events) in actions {
            assert_eq!(
                events.start, next,
                "actions are contiguous and cover every request"
            );
            assert!(!events.is_empty() && events.len() <= 3);
            next = events.end;
        }
        assert_eq!(next, specs.len());
    }

    /// Classifying a stream in pieces, carrying the open action from one piece to the next,
    /// finds the same actions as classifying it whole, wherever the stream is cut.
    #[test]
    fn carrying_the_open_action_across_pieces_changes_nothing() {
        let specs: Vec<String> = [
            format!("HEAD v1={INDEX}@0"),
            format!("GET {INDEX}@1"),
            format!("GET {AMD64}@2"),
            format!("HEAD v1={INDEX}@20"),
            format!("GET v1={INDEX}@40"),
            format!("GET {ARM64}@100"),
            format!("HEAD {OTHER}@130"),
            format!("GET {OTHER}@190"),
            format!("GET {AMD64}@191"),
            format!("HEAD v2={OTHER}@300"),
        ]
        .into();
        let requests: Vec<_> = specs.iter().map(|s| req(s)).collect();
        let summary = |a: &Action| (a.kind, a.time, a.reference.clone(), a.digest.clone());
        let whole: Vec<_> = classify(&requests, DEFAULT_WINDOW)
            .iter()
            .map(summary)
            .collect();
        for cut in 0..=requests.len() {
            // Cut at the time of request `cut` (the next piece starts with it).
            let now = requests.get(cut).map_or(at(1000), |r| r.time);
            let mut first = Classifier::default();
            let mut found: Vec<_> = requests[..cut]
                .iter()
                .filter_map(|r| first.push(r))
                .collect();
            let mut second = Classifier::default();
            match first.take_open(now) {
                Ok(Some((open, first))) => {
                    if let Some(first) = first {
                        assert_eq!(requests[first].time, open.time);
                    }
                    assert_eq!(second.resume(open), None)
                }
                Ok(None) => {}
                Err(ended) => found.push(ended),
            }
            found.extend(requests[cut..].iter().filter_map(|r| second.push(r)));
            found.extend(second.finish());
            let pieces: Vec<_> = found.iter().map(summary).collect();
            assert_eq!(pieces, whole, "cut before request {cut}");
            assert!(found.iter().filter(|a| a.resumed).count() <= 1);
        }
    }
}
