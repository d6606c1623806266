"""Splitting a match component weighs each pair's evidence (cluster.VOTE_BITS), not only its side of the cut."""

import numpy as np

from aietl_pipelines.dedupe.cluster import VOTE_BITS, _votes, cluster_records


def test_votes_are_bits_beyond_the_threshold_up_to_the_bound():
    p = np.array([0.5, 1 - 2.0**-20, 2.0**-20, 2 / 3, 1 / 3])
    votes = _votes(p, 0.5)
    assert votes[0] == 0 and votes[1] == 1 and votes[2] == -1
    assert np.allclose(votes[3:], [1 / VOTE_BITS, -1 / VOTE_BITS])  # one bit each way: a tenth of a sure vote


def test_sure_links_outweigh_uncertain_non_matches_but_not_sure_ones():
    # two groups of one entity (0-2 and 3-5), each linked inside by sure matches, joined by two sure matches and
    # seven pairs scored just under the threshold (the same person at another company and city)
    left = [0, 0, 1, 3, 3, 4, 0, 1] + [0, 0, 1, 1, 2, 2, 2]
    right = [1, 2, 2, 4, 5, 5, 3, 4] + [4, 5, 3, 5, 3, 4, 5]
    sure, weak = 1 - 1e-9, 0.3
    labels = cluster_records(6, np.array(left), np.array(right), np.array([sure] * 8 + [weak] * 7), 0.5)
    assert len(set(labels.tolist())) == 1
    # the same between-group pairs scored as sure non-matches split the component
    labels = cluster_records(6, np.array(left), np.array(right), np.array([sure] * 8 + [1e-9] * 7), 0.5)
    assert labels[0] == labels[1] == labels[2] != labels[3] == labels[4] == labels[5]
