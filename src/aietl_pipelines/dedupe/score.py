"""Unsupervised Fellegi-Sunter scoring, trained the way Splink trains it.

Each comparison level has m = P(level | match) and u = P(level | non-match); a pair's match weight is
log2(prior/(1-prior)) + sum(log2(m/u)) over its non-null levels, and its match probability the logistic of that.
No labels are used:

- u from RANDOM pairs of records, never from the candidates (Splink's `estimate_u_using_random_sampling`): the
  candidates are near-matches by construction, and their level frequencies would make an exact name agreement
  look common (2 bits instead of the 7+ it carries among random pairs); then u among the random pairs' NON-matches
  (`non_match_u`: each weighted by 1 - the fitted model's posterior, m refitted, until u stops moving), as random
  pairs hold true matches at the prior's rate;
- m by EM in SESSIONS (Splink's `em_training_session.py`): each session takes the candidate pairs that agree
  exactly on the fields of one blocking rule, leaves those fields out (their agreement is what selected the
  pairs) and estimates the m of all the others with u held fixed; each m is the mean of its session estimates
  (no rule declared: one session per field);
- the prior (the share of all record pairs that match) from the same sessions, as Splink's deterministic rules
  do it (`estimate_prior`);
- weights are BOUNDED (m is never below `m_floor`: a field whose matches always agreed in the sample costs at
  most log2(m_floor/u) on a disagreement, not -20 bits) and MONOTONE (a weaker level never weighs more than a
  stronger one: pool-adjacent-violators over the level order);
- an information companion (`<words>~bits`, free text: the bits of the words two texts share when they agree) is
  not fitted but set as Splink's term-frequency adjustment (`information_weights`): the agreement weighs log2(m) +
  bits instead of the level's average log2(m / u), capped where the random pairs show non-matches sharing as much;
- a missing value (level 0) weighs 0;
- where free texts state their subject (a value each repeats, `textparse.TEXT_SUBJECT`), their word overlap is
  fitted but weighs 0 (`subject_unscored`): the segments and the subject already read those words;
- the match threshold is read from the fitted model (`FellegiSunterModel.threshold`, see `model_threshold`).

`counts` (optional, in `fit_model` and the helpers it calls): the rows of `levels` are distinct comparison
PATTERNS, row i standing for `counts[i]` > 0 pairs. A pair's posterior depends only on its levels, so every sum over
pairs becomes a count-weighted sum over patterns and the model equals the one fitted on the expanded pairs (up to
float summation order): `dedupe.engine: spark` fits billions of pairs from their few thousand pattern counts
(`spark/patterns.py`). None: one pair per row.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from aietl_pipelines.dedupe.compare import BITS_SUFFIX, TF_SUFFIX, band_bits
from aietl_pipelines.dedupe.textparse import SUBJECT_SHARE, SUBJECT_UNSCORED, TEXT_SUBJECT

#: A true match disagrees on any one field with probability at least this (typos, moves, missing updates):
#: bounds a disagreement's weight at log2(M_FLOOR / u) >= -6.6 bits.
M_FLOOR = 0.01

#: At most this many refits of the model with u read among the random pairs weighted by 1 - posterior
#: (`non_match_u`), stopping earlier at a fixed point: no u moved by U_TOL bits or more.
U_ROUNDS = 5
U_TOL = 0.01
#: The prior when no EM session could estimate it (`estimate_prior`: no rule with enough candidate pairs).
FALLBACK_PRIOR = 1e-4

logger = logging.getLogger(__name__)


@dataclass
class FellegiSunterModel:
    """Fitted m and u per comparison level (index 0 = null, unused), the prior match rate and the threshold."""

    names: list[str]
    sizes: list[int]
    m: list[np.ndarray] = field(default_factory=list)
    u: list[np.ndarray] = field(default_factory=list)
    prior: float = 0.01
    threshold: float = 0.5

    def weights(self) -> list[np.ndarray]:
        """log2(m/u) per level (0 for the null level)."""
        out = []
        for m, u in zip(self.m, self.u, strict=True):
            w = np.log2(np.maximum(m, 1e-12) / np.maximum(u, 1e-12))
            w[0] = 0.0
            out.append(w)
        return out

    def match_weight(self, levels: np.ndarray, prior: float | None = None) -> np.ndarray:
        """log2 odds of a match of each row of `levels`. A level above a comparison's last is read as its last (a
        model saved before the comparison had more levels: the free-text `repeated` had 3, now 5; all of its
        disagreements were its last level)."""
        p = self.prior if prior is None else prior
        total = np.full(len(levels), np.log2(p / (1 - p)))
        for k, w in enumerate(self.weights()):
            total += w[np.minimum(levels[:, k], len(w) - 1)]
        return total

    def probability(self, levels: np.ndarray, prior: float | None = None) -> np.ndarray:
        return 1.0 / (1.0 + np.power(2.0, -self.match_weight(levels, prior)))

    @classmethod
    def from_dict(cls, data: dict) -> FellegiSunterModel:
        """Inverse of `to_dict`."""
        return cls(list(data["names"]), [int(x) for x in data["sizes"]], [np.asarray(x, dtype=float) for x in data["m"]],
                   [np.asarray(x, dtype=float) for x in data["u"]], float(data["prior"]),
                   float(data.get("threshold", 0.5)))

    def to_dict(self) -> dict:
        return {"names": self.names, "sizes": self.sizes, "m": [x.tolist() for x in self.m],
                "u": [x.tolist() for x in self.u], "prior": self.prior, "threshold": self.threshold}


def level_frequencies(levels: np.ndarray, sizes: list[int], weights: np.ndarray | None = None,
                      smoothing: float = 1.0) -> list[np.ndarray]:
    """Smoothed frequency of each non-null level per comparison (index 0 left at 1, unused)."""
    out = []
    for k, size in enumerate(sizes):
        counts = np.bincount(levels[:, k], weights=weights, minlength=size).astype(float)[:size]
        counts[0] = 0
        counts[1:] += smoothing
        freq = counts / counts[1:].sum()
        freq[0] = 1.0
        out.append(freq)
    return out


def random_pair_u(random_levels: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """u per level from random record pairs (half a pair of pseudo-count per level: no level is impossible)."""
    return level_frequencies(random_levels, sizes, smoothing=0.5)


def _pava_decreasing(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least-squares non-increasing fit (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for v, w in zip(values.tolist(), weights.tolist(), strict=True):
        blocks.append([v, max(w, 1e-9), 1])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    return np.concatenate([np.full(c, v) for v, _, c in blocks])


def bound_and_order(m: np.ndarray, u: np.ndarray, counts: np.ndarray, m_floor: float = M_FLOOR) -> np.ndarray:
    """m adjusted so that log2(m/u) is bounded below (>= log2(m_floor)) and non-increasing over the levels 1..L-1
    (a weaker agreement never outweighs a stronger one). `counts`: pairs per level, weighting the pooling."""
    m = m.copy()
    body = np.maximum(m[1:], np.minimum(m_floor, u[1:]))  # raises only negative weights, to log2(m_floor/u)
    body = body / body.sum()
    w = _pava_decreasing(np.log2(body / u[1:]), counts[1:] + 1.0)
    # pooled means of bounded weights; the same floor for every level keeps the order (not renormalised after:
    # the weights are what is used, and EM re-estimates m from the posteriors at each step)
    m[1:] = u[1:] * np.power(2.0, np.maximum(w, np.log2(m_floor)))
    return m


def _level_counts(levels: np.ndarray, k: int, size: int, counts: np.ndarray | None = None) -> np.ndarray:
    """Pairs per level of comparison k (each row weighted by its count, if given)."""
    return np.bincount(levels[:, k], weights=counts, minlength=size).astype(float)[:size]


def _pairs(mask: np.ndarray, counts: np.ndarray | None = None) -> float:
    """How many pairs the rows selected by `mask` stand for."""
    return int(mask.sum()) if counts is None else float(counts[mask].sum())


def _em(levels: np.ndarray, u: list[np.ndarray], m: list[np.ndarray], active: list[int], prior: float,
        iterations: int, tol: float = 1e-6, counts: np.ndarray | None = None) -> tuple[list[np.ndarray], float]:
    """Classic two-class EM on `levels` over the comparisons in `active`, u held fixed (`counts`: module doc)."""
    sizes = [len(x) for x in m]
    per_level = [_level_counts(levels, k, sizes[k], counts) for k in range(len(sizes))]
    lam = prior
    for _ in range(iterations):
        total = np.full(len(levels), np.log2(lam / (1 - lam)))
        for k in active:
            w = np.log2(m[k] / u[k])
            w[0] = 0.0
            total += w[levels[:, k]]
        post = 1.0 / (1.0 + np.power(2.0, -total))
        share = post.mean() if counts is None else (post * counts).sum() / counts.sum()
        new_lam = float(np.clip(share, 1e-6, 1 - 1e-6))
        fitted = level_frequencies(levels, sizes, weights=post if counts is None else post * counts, smoothing=1e-3)
        for k in active:
            m[k] = bound_and_order(fitted[k], u[k], per_level[k])
        done = abs(new_lam - lam) < tol
        lam = new_lam
        if done:
            break
    return m, lam


def _start_m(sizes: list[int]) -> list[np.ndarray]:
    out = []
    for size in sizes:  # matches mostly agree at the best level
        start = np.linspace(1.0, 0.05, size - 1) ** 2
        out.append(np.r_[1.0, start / start.sum()])
    return out


def estimate_prior(sessions: list[tuple[list[int], float]], m: list[np.ndarray], random_levels: np.ndarray,
                   exact: list[list[int]], min_hits: int = 3, rule_rates: Mapping[tuple[str, ...], float] | None = None,
                   names: list[str] | None = None) -> float:
    """The share of all record pairs that match, from the EM sessions (Splink's deterministic rules).

    Session F found a match share lambda_F among the candidate pairs agreeing exactly on its comparisons F (a
    blocking rule: every such pair is a candidate); a share r_F of all record pairs agree exactly on F and a share
    prod m_k of the matches do, so prior = lambda_F r_F / prod m_k; the median over the sessions, each weighted
    by prod m_k (the share of the matches its rule holds): a rule few matches agree on extrapolates from few of them and divides by a poorly
    known m (the persons set's date of birth, which a third of the records lack: prod m = 0.02, a prior 37 times
    the truth and F1 0.19 unweighted; weighted, the names session decides).

    r_F is COUNTED over all record pairs when `rule_rates` has it (`scoring.rule_agreement_rates`: sum of
    C(block size, 2) over the rule's values, as Splink counts its deterministic rules' comparisons); else it is
    estimated on the random pairs (among those where F is not null), from sessions with at least `min_hits`
    random pairs agreeing. The random estimate fails at scale: r_F shrinks like 1/N, so 50,000 random pairs of
    1M records hold no agreeing pair on most rules, and the prior fell back to 1e-4 (70x the true 1.4e-6): F1 was
    0.997 at 300K records and 0.26 at 1M (docs/benchmarks.md).
    """
    values, weights = [], []
    for fixed, lam in sessions:
        recall = float(np.prod([max(float(m[k][exact[k]].sum()), 1e-3) for k in fixed]))
        key = tuple(sorted(names[k] for k in fixed)) if names is not None else None
        if rule_rates is not None and key in rule_rates:
            if rule_rates[key] > 0:
                values.append(lam * rule_rates[key] / recall)
                weights.append(recall)
            continue
        nonnull = np.all(random_levels[:, fixed] != 0, axis=1)
        agree = np.all([np.isin(random_levels[nonnull, k], exact[k]) for k in fixed], axis=0)
        hits = int(agree.sum())
        if hits < min_hits:
            continue
        values.append(lam * hits / nonnull.sum() / recall)
        weights.append(recall)
    return float(np.clip(_weighted_median(values, weights), 1e-9, 0.5)) if values else FALLBACK_PRIOR


def _weighted_median(values: list[float], weights: list[float]) -> float:
    """The median of `values` weighted by `weights` (where the two halves weigh the same, the mean of the two
    middle values: the plain median for equal weights)."""
    order = np.argsort(values)
    v, w = np.asarray(values, dtype=float)[order], np.asarray(weights, dtype=float)[order]
    cum = np.cumsum(w) / w.sum()
    i = int(np.searchsorted(cum, 0.5 - 1e-12))
    if np.isclose(cum[i], 0.5) and i + 1 < len(v):
        return float((v[i] + v[i + 1]) / 2)
    return float(v[i])


def combine_sessions(estimates: list[np.ndarray]) -> np.ndarray:
    """One comparison's m from its EM sessions' estimates: the per-level MEDIAN, renormalised (Splink takes the
    mean). A session blocked on a rule whose agreeing pairs are mostly non-matches that look alike can converge
    to a wrong solution: at 1M generated records, the 3.6M pairs sharing first and last name made "match" mean
    "similar e-mail" (m of an exact date of birth 0.16, where the four other sessions found 0.93-0.99), and the
    mean carried that into the model (precision 0.77). With three or more sessions the median ignores one such
    session; with one or two it is the mean. Measured on every data set of the benchmarks (docs/dedupe.md)."""
    if len(estimates) < 3:
        return np.mean(estimates, axis=0)
    m = np.median(np.asarray(estimates), axis=0)
    m[0] = 1.0
    total = m[1:].sum()
    if total > 0:
        m[1:] = m[1:] / total
    return m


def _agree(levels: np.ndarray, exact: list[list[int]], rule: list[int]) -> np.ndarray:
    """Rows agreeing exactly on every comparison of `rule`."""
    return np.all([np.isin(levels[:, k], exact[k]) for k in rule], axis=0)


def _session_rules(levels: np.ndarray, exact: list[list[int]], declared: list[list[int]], per_field: list[list[int]],
                   min_pairs: int, counts: np.ndarray | None = None) -> list[list[int]]:
    """The declared rules that select enough pairs; when none does (free text without e-mails, phones or dates),
    one rule per field."""
    def size(rule: list[int]) -> float:
        return _pairs(_agree(levels, exact, rule), counts) if len(levels) else 0

    usable = [r for r in declared if size(r) >= min_pairs]
    return usable or per_field


def _single_comparison_sessions(levels: np.ndarray, random_levels: np.ndarray, u: list[np.ndarray],
                                exact: list[list[int]], per_field: list[list[int]], companions: dict[int, list[int]],
                                estimates: list[list[np.ndarray]], found: list[tuple[list[int], float]],
                                sizes: list[int], min_pairs: int, is_tf: list[bool],
                                counts: np.ndarray | None = None,
                                rule_rates: Mapping[tuple[str, ...], float] | None = None,
                                names: list[str] | None = None) -> None:
    """m of the comparisons no EM session could estimate (each session that holds them has no second comparison
    with values: free text's date beside words, segments and numbers, which are read from the same words).

    In the pairs agreeing exactly on an estimated comparison F, the match share is known from the model so far,
    lambda = prior m_F / (prior m_F + (1 - prior) u_F), and non-matches agree on the comparison k by chance (u_k),
    so its level frequencies f give m_k = (f - (1 - lambda) u_k) / lambda (clipped at 0, renormalised)."""
    todo = [k for k in range(len(sizes)) if not estimates[k] and not is_tf[k]]
    if not todo or not len(levels):
        return
    m_now = [combine_sessions(e) if e else start for e, start in zip(estimates, _start_m(sizes), strict=True)]
    prior = estimate_prior(found, m_now, random_levels, exact, rule_rates=rule_rates, names=names)
    for k in todo:
        for fixed in per_field:
            if k in fixed or any(not estimates[j] for j in fixed) or any(k in companions[j] for j in fixed):
                continue
            session = _agree(levels, exact, fixed)
            values = levels[session, k]
            weights = None if counts is None else counts[session][values != 0]
            values = values[values != 0]
            n_values = len(values) if weights is None else weights.sum()
            if n_values < min_pairs:
                continue
            pm = float(np.prod([m_now[j][exact[j]].sum() for j in fixed]))
            pu = float(np.prod([u[j][exact[j]].sum() for j in fixed]))
            lam = float(np.clip(prior * pm / (prior * pm + (1 - prior) * pu), 0.01, 1.0))
            freq = np.bincount(values, weights=weights, minlength=sizes[k]).astype(float)[: sizes[k]] / n_values
            m = np.clip((freq - (1 - lam) * u[k]) / lam, 0.0, None)
            m[0] = 0.0
            if m[1:].sum() <= 0:
                continue
            estimates[k].append(np.r_[1.0, m[1:] / m[1:].sum()])
            break


def fit_model(levels: np.ndarray, random_levels: np.ndarray, names: list[str], sizes: list[int],
              iterations: int = 25, min_session_pairs: int = 10, exact: list[list[int]] | None = None,
              sessions: list[list[int]] | None = None, related: dict[str, list[str]] | None = None,
              counts: np.ndarray | None = None, rule_rates: Mapping[tuple[str, ...], float] | None = None,
              u_rounds: int | None = None) -> FellegiSunterModel:
    """Fit the model Splink's way (module docstring).

    `sessions`: the comparisons of each EM session's rule (the blocking rules: pairs agreeing exactly on all of
    them, which are left out of that session's estimate); default one session per comparison. `exact[k]`: the
    levels of comparison k that count as agreeing (default level 1). `related[name]`: comparisons read from the same
    values as `name` (free text's words and segments), left out of the sessions blocked on it with its
    term-frequency companions: within pairs selected for agreeing on one, the other agrees by construction, and
    with u held at its random-pair value EM would call every such pair a match. `counts`: row i of `levels` is a
    comparison pattern standing for counts[i] pairs (module docstring); None: one row per pair. `rule_rates`:
    the share of all record pairs agreeing exactly on each rule's comparisons (sorted names; `estimate_prior`).
    `u_rounds`: refits with u re-read among the random pairs' likely non-matches (`non_match_u`); None: U_ROUNDS."""
    u_rounds = U_ROUNDS if u_rounds is None else u_rounds
    counts = None if counts is None else np.asarray(counts, dtype=np.float64)
    exact = exact or [[1] for _ in sizes]
    model = _fit_given_u(levels, random_levels, names, sizes, random_pair_u(random_levels, sizes), iterations,
                         min_session_pairs, exact, sessions, related, counts, rule_rates)
    fitted = [k for k, n in enumerate(names) if not n.endswith(BITS_SUFFIX)]  # the set companions follow the rest
    for _ in range(u_rounds):  # u among the NON-matches: each random pair weighted by the model's 1 - posterior
        u = non_match_u(random_levels, sizes, model)
        if max((float(np.abs(np.log2(u[k][1:]) - np.log2(model.u[k][1:])).max()) for k in fitted), default=0.0) < U_TOL:
            break  # a fixed point: the model's non-matches give back the u it was fitted with
        weights = 1.0 - model.probability(random_levels) if len(random_levels) else None
        model = _fit_given_u(levels, random_levels, names, sizes, u, iterations, min_session_pairs, exact, sessions,
                             related, counts, rule_rates, prior=model.prior, random_weights=weights)
    return model


def non_match_u(random_levels: np.ndarray, sizes: list[int], model: FellegiSunterModel) -> list[np.ndarray]:
    """u per level from the random pairs, each weighted by the fitted model's probability that it is NOT a match.

    Random pairs hold true matches at the prior's rate (2.8% of the inventors set's pairs, where an inventor has
    dozens of records), and those agree: counted as non-matches they inflate the u of the agreeing levels and
    take bits from every agreement (a repeated name: 5.1 bits where non-matches almost never share one)."""
    post = model.probability(random_levels) if len(random_levels) else np.zeros(0)
    return level_frequencies(random_levels, sizes, weights=1.0 - post, smoothing=0.5)


def _fit_given_u(levels: np.ndarray, random_levels: np.ndarray, names: list[str], sizes: list[int],
                 u: list[np.ndarray], iterations: int, min_session_pairs: int, exact: list[list[int]],
                 sessions: list[list[int]] | None, related: dict[str, list[str]] | None,
                 counts: np.ndarray | None, rule_rates: Mapping[tuple[str, ...], float] | None,
                 prior: float | None = None, random_weights: np.ndarray | None = None) -> FellegiSunterModel:
    """m by EM sessions, the prior and the threshold, with u given (`fit_model`). `prior`: kept instead of
    estimated (the u rounds keep the first fit's: estimated again from the refitted m, FEBRL3 free text's fell
    30-fold, far below the share of matches its own posteriors find among the random pairs, and its recall with it).
    `random_weights`: each random pair's weight as a non-match (1 - posterior; None: 1), for the information
    companions' caps (`information_weights`)."""
    n_comp = len(sizes)
    related = related or {}
    companions = {k: [j for j in range(n_comp) if names[j] in (names[k] + TF_SUFFIX, names[k] + BITS_SUFFIX)
                      or names[j] in related.get(names[k], ())]
                  for k in range(n_comp)}
    # information companions: weights set from their bits (`information_weights`), never fitted by EM
    set_weights = [k for k in range(n_comp) if names[k].endswith(BITS_SUFFIX)]
    companion = [n.endswith((TF_SUFFIX, BITS_SUFFIX)) for n in names]
    per_field = [[k] for k in range(n_comp) if not companion[k]]
    estimates: list[list[np.ndarray]] = [[] for _ in sizes]
    found: list[tuple[list[int], float]] = []

    def run_session(fixed: list[int]) -> None:
        session = _agree(levels, exact, fixed) if len(levels) else np.zeros(0, bool)
        left_out = set(fixed) | {j for k in fixed for j in companions[k]}
        active = [j for j in range(n_comp) if j not in left_out and j not in set_weights
                  and (levels[session, j] != 0).any()]
        if _pairs(session, counts) < min_session_pairs or not active:
            return
        m, lam = _em(levels[session], u, _start_m(sizes), active, 0.5, iterations,
                     counts=None if counts is None else counts[session])
        for j in active:
            estimates[j].append(m[j])
        found.append((fixed, lam))

    rules = _session_rules(levels, exact, [list(r) for r in sessions or [] if r], per_field, min_session_pairs,
                           counts)
    for fixed in rules:
        run_session(fixed)
    # a comparison that every session blocked on (the only rule is on it) is estimated in a session blocked on
    # another single comparison, as Splink needs each comparison trained outside its own blocking rule
    for fixed in per_field:
        unestimated = {k for k in range(n_comp) if not estimates[k] and not companion[k]}
        if not unestimated:
            break
        if fixed not in rules and not set(fixed) & unestimated:
            run_session(fixed)
    _single_comparison_sessions(levels, random_levels, u, exact, per_field, companions, estimates, found, sizes,
                                min_session_pairs, companion, counts, rule_rates, names)
    m_final = _start_m(sizes)
    missing = [k for k in range(n_comp) if not estimates[k] and k not in set_weights]
    if missing and len(levels):  # comparisons no session could estimate: EM on all candidates
        m_all, _ = _em(levels, u, _start_m(sizes), [k for k in range(n_comp) if k not in set_weights], 0.05,
                       iterations, counts=counts)
        for k in missing:
            estimates[k].append(m_all[k])
    for k in range(n_comp):
        if estimates[k]:
            m_final[k] = bound_and_order(combine_sessions(estimates[k]), u[k],
                                         _level_counts(levels, k, sizes[k], counts))
    u = list(u)
    for k in set_weights:
        base = names.index(names[k][: -len(BITS_SUFFIX)])
        m_final[k], u[k] = information_weights(float(u[base][1]), random_levels[:, k], sizes[k], random_weights)
    if prior is None:
        prior = estimate_prior(found, m_final, random_levels, exact, rule_rates=rule_rates, names=names)
        if not found:  # said once: the u rounds keep this prior
            logger.warning(
                "dedupe: too few candidate pairs to fit the match model (%d; an EM session needs %d agreeing on one "
                "comparison): the prior falls back to %g and few or no duplicates will be found. Give more records "
                "or label some pairs (`kedro dedupe-label`, docs/dedupe.md).",
                _pairs(np.ones(len(levels), bool), counts), min_session_pairs, FALLBACK_PRIOR)
    for k in subject_unscored(names, random_levels):
        m_final[k] = np.array(u[k], dtype=float)  # fitted for the sessions, weighs nothing: log2(m / u) = 0
    model = FellegiSunterModel(names, sizes, m_final, u, prior)
    model.threshold = model_threshold(model.probability(levels) if len(levels) else np.zeros(0), counts)
    return model


def subject_unscored(names: list[str], random_levels: np.ndarray) -> list[int]:
    """The comparisons that weigh nothing because the texts state their subject (`textparse.TEXT_SUBJECT`, in at
    least SUBJECT_SHARE of the random pairs): the word overlap and its companions (`textparse.SUBJECT_UNSCORED`).

    They still take part in the EM sessions (with the segments, numbers and repeated values alone, each session on
    one of them has a single other comparison to fit, whose m and match share EM cannot tell apart), and their m
    is what the sessions found; only their weight is 0. PatentsView inventors free text 0.983 -> 0.9965 with the
    levels of `compare._repeated_level` (docs/dedupe.md)."""
    if TEXT_SUBJECT not in names or not len(random_levels):
        return []
    if float((random_levels[:, names.index(TEXT_SUBJECT)] != 0).mean()) < SUBJECT_SHARE:
        return []
    return [k for k, n in enumerate(names) if n in SUBJECT_UNSCORED
            or any(n == w + suffix for w in SUBJECT_UNSCORED for suffix in (BITS_SUFFIX, TF_SUFFIX))]


def information_weights(u_agree: float, random_bands: np.ndarray, size: int,
                        random_weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """m and u of an information companion (`compare.word_information_levels`): Splink's term-frequency adjustment
    with the u of the agreed value read from its information instead of its count.

    The words of two texts agree (level 1, u_agree among random pairs) and share B bits. Were the words independent of
    one another, a non-match would share exactly these words with probability 2^-B, so the agreement weighs
    log2(m / 2^-B) = log2(m / u_agree) + log2(u_agree) + B: the companion's level of at least B bits weighs
    log2(u_agree) + B (stored as m = u_agree, u = 2^-B). Words that occur together (the names of a patent's
    inventors, a city and its state) break the independence: non-matches then share many bits. The random pairs show
    it: where k of n random pairs (each weighted by its chance of being a non-match, `random_weights`) agree with at
    least B bits, no agreement of B bits is taken as rarer than k / n, i.e. B is capped at log2(n / k)."""
    bits = band_bits()[:size].copy()
    bands = np.asarray(random_bands)
    weights = np.ones(len(bands)) if random_weights is None else np.asarray(random_weights, dtype=float)
    n = float(weights.sum())
    if n > 0:
        hits = np.cumsum(np.bincount(bands, weights=weights, minlength=size)[:size][1:])  # at least each band's bits
        capped = hits > 0
        bits[1:][capped] = np.minimum(bits[1:][capped], np.log2(n / hits[capped]))
    u = np.power(2.0, -bits)
    m = np.full(size, max(u_agree, 1e-12))
    m[0] = u[0] = 1.0
    return m, u


def model_threshold(probability: np.ndarray, counts: np.ndarray | None = None) -> float:
    """The match-probability cut that maximises the F1 the model itself expects on the candidate pairs:
    taking the k most probable pairs, expected true positives = sum of their probabilities, expected F1 =
    2 TP / (k + sum of all probabilities).

    `counts`: probability[i] is that of counts[i] pairs (one comparison pattern). Within a run of equal
    probabilities the expected F1 is monotone in how many of them are taken, so its best is at the first or the
    last pair of the run: both are evaluated, in the order of the expanded pairs."""
    if counts is not None:
        return _weighted_threshold(probability, np.asarray(counts, dtype=np.float64))
    if not len(probability) or probability.sum() <= 0:
        return 0.5
    p = np.sort(probability)[::-1]
    tp = np.cumsum(p)
    f1 = 2 * tp / (np.arange(1, len(p) + 1) + p.sum())
    return float(p[int(np.argmax(f1))])


def _weighted_threshold(probability: np.ndarray, counts: np.ndarray) -> float:
    """`model_threshold` of probability[i] repeated counts[i] times, without expanding them."""
    if not len(probability) or (probability * counts).sum() <= 0:
        return 0.5
    order = np.argsort(-probability, kind="stable")
    p, w = probability[order], counts[order]
    taken, tp = np.cumsum(w), np.cumsum(p * w)
    total = tp[-1]
    first = 2 * (np.r_[0.0, tp[:-1]] + p) / (np.r_[0.0, taken[:-1]] + 1 + total)
    last = 2 * tp / (taken + total)
    f1 = np.stack([first, last], axis=1).reshape(-1)
    return float(p[int(np.argmax(f1)) // 2])


def fit_em(levels: np.ndarray, random_levels: np.ndarray, names: list[str], sizes: list[int],
           prior: float = 0.05, iterations: int = 25, tol: float = 1e-6, sessions: list[list[int]] | None = None,
           related: dict[str, list[str]] | None = None,
           rule_rates: Mapping[tuple[str, ...], float] | None = None) -> FellegiSunterModel:
    """The unsupervised model (kept name): see `fit_model`. `prior` and `tol` are unused (the prior is estimated)."""
    return fit_model(levels, random_levels, names, sizes, iterations=iterations, sessions=sessions, related=related,
                     rule_rates=rule_rates)
